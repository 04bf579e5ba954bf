"""Latency measured inside a worker process, so untrusted models never load in the caller.

`python -m evaluators.artifacts.latency_isolated JOB_DIR`, with the same memory limit and timeout
as inference; the result crosses back as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evaluators.artifacts.inference import InferenceInputError, feature_matrix, open_runner
from evaluators.artifacts.latency import measure_latency_on
from evaluators.artifacts.worker_process import (
    describe_exit,
    limit_memory,
    log_tail,
    worker_env,
)
from evaluators.candidate import ModelConfig
from evaluators.policy import LatencyPolicy
from evaluators.report import LatencySection

if TYPE_CHECKING:
    import pandas as pd


class LatencyError(RuntimeError):
    """Latency could not be measured; the message says why."""


def measure_latency_isolated(
    *,
    candidate_dir: Path,
    candidate_config: ModelConfig,
    baseline_dir: Path,
    baseline_config: ModelConfig,
    frame: pd.DataFrame,
    policy: LatencyPolicy,
    timeout_s: float,
    memory_mb: int,
    confidence: float = 0.95,
) -> LatencySection | None:
    """Interleaved candidate/production latency, or None when the worker could not finish."""
    if frame.empty:
        raise LatencyError("latency needs at least one benchmark row")
    with tempfile.TemporaryDirectory(prefix="shipyard-latency-") as tmp:
        job_dir = Path(tmp)
        # Plain .npy matrices: the worker then needs neither pandas nor pyarrow (0.7 s of start).
        for name, config in (("candidate", candidate_config), ("baseline", baseline_config)):
            try:
                matrix = feature_matrix(frame, config.features)
            except InferenceInputError as exc:
                raise LatencyError(str(exc)) from None
            np.save(job_dir / f"{name}.npy", matrix, allow_pickle=False)
        (job_dir / "job.json").write_text(
            json.dumps(
                {
                    "candidate_dir": str(candidate_dir.resolve()),
                    "candidate_config": candidate_config.model_dump(mode="json"),
                    "baseline_dir": str(baseline_dir.resolve()),
                    "baseline_config": baseline_config.model_dump(mode="json"),
                    "policy": policy.model_dump(mode="json"),
                    "memory_mb": memory_mb,
                    "confidence": confidence,
                }
            )
        )
        log_path = job_dir / "worker.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "evaluators.artifacts.latency_isolated", str(job_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=worker_env(1),
                cwd=job_dir,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return None
        result = job_dir / "latency.json"
        if code != 0 or not result.exists():
            raise LatencyError(describe_exit(code, memory_mb, log_tail(log_path)))
        return LatencySection.model_validate_json(result.read_text())


def main(argv: list[str]) -> int:
    job_dir = Path(argv[1])
    job = json.loads((job_dir / "job.json").read_text())
    limit_memory(int(job["memory_mb"]))
    candidate = open_runner(
        model_dir=Path(job["candidate_dir"]),
        config=ModelConfig.model_validate(job["candidate_config"]),
    )
    baseline = open_runner(
        model_dir=Path(job["baseline_dir"]),
        config=ModelConfig.model_validate(job["baseline_config"]),
    )
    section = measure_latency_on(
        candidate=candidate,
        baseline=baseline,
        matrices=(
            np.load(job_dir / "candidate.npy", allow_pickle=False),
            np.load(job_dir / "baseline.npy", allow_pickle=False),
        ),
        policy=LatencyPolicy.model_validate(job["policy"]),
        confidence=float(job["confidence"]),
    )
    (job_dir / "latency.json").write_text(section.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
