"""Model inference: in-process runners, and a worker process with time and memory limits.

`predict_proba` never hangs and never crashes the caller: the model is loaded and run in a
separate Python process (`python -m evaluators.artifacts.inference JOB_DIR`) with RLIMIT_AS
set and a wall-clock timeout; arrays cross the process boundary as .npy files (never pickled).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from evaluators.artifacts.loading import load_skops, open_onnx_session
from evaluators.artifacts.worker_process import (
    describe_exit,
    describe_failure,
    limit_memory,
    log_tail,
    worker_env,
)
from evaluators.candidate import ArtifactFormat, InputKind, ModelConfig, Task
from evaluators.report import RunStatus

if TYPE_CHECKING:
    import onnxruntime
    import pandas as pd

    from evaluators.artifacts.verdict_cache import VerdictCache


class InferenceInputError(ValueError):
    """The benchmark frame cannot be fed to the model (missing or non-numeric features)."""


class Runner(Protocol):
    """Anything that turns a float32 feature matrix into model outputs."""

    @property
    def features(self) -> list[str]: ...

    def predict(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        """Binary: P(positive) (n,); multiclass: (n, k); regression: (n,)."""
        ...


def feature_matrix(frame: pd.DataFrame, features: list[str]) -> NDArray[np.float32]:
    """The features in config order as one C-contiguous float32 matrix."""
    import pandas as pd  # not at import: the worker process never needs pandas

    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise InferenceInputError(
            f"benchmark lacks feature column(s) {', '.join(missing)}; "
            f"it has: {', '.join(map(str, frame.columns))}"
        )
    bad = [f for f in features if not pd.api.types.is_numeric_dtype(frame[f].dtype)]
    if bad:
        raise InferenceInputError(f"feature column(s) {', '.join(bad)} are not numeric")
    return np.ascontiguousarray(frame[features].to_numpy(dtype=np.float32, na_value=np.nan))


def _positive_index(config: ModelConfig, classes: list[Any]) -> int:
    positive = config.positive_class if config.positive_class is not None else classes[-1]
    for index, value in enumerate(classes):
        if str(value) == str(positive):
            return index
    raise ValueError(f"positive_class {positive!r} is not one of the classes {classes}")


def _to_output(config: ModelConfig, raw: NDArray[Any], classes: list[Any]) -> NDArray[np.float64]:
    """Shape raw model output per task: P(positive), class probabilities or values."""
    out = np.asarray(raw, dtype=np.float64)
    if config.task is Task.REGRESSION:
        return out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 else out
    if config.task is Task.MULTICLASS:
        if out.ndim != 2 or (config.classes and out.shape[1] != len(config.classes)):
            raise ValueError(f"expected class probabilities (n, k), got shape {out.shape}")
        return out
    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
        return out.reshape(-1)
    if out.ndim != 2:
        raise ValueError(f"expected probabilities (n, 2), got shape {out.shape}")
    return np.ascontiguousarray(out[:, _positive_index(config, classes)])


class OnnxRunner:
    """An onnxruntime session fed as config.yaml declares."""

    def __init__(self, session: onnxruntime.InferenceSession, config: ModelConfig) -> None:
        self._session = session
        self._config = config
        self._inputs = {i.name: i for i in session.get_inputs()}
        self._double = {name for name, i in self._inputs.items() if i.type == "tensor(double)"}
        self._output = self._choose_output()
        self._classes: list[Any] = list(config.classes) if config.classes else [0, 1]
        if config.input.kind is InputKind.TENSOR:
            name = config.input.name or next(iter(self._inputs))
            if name not in self._inputs:
                raise ValueError(
                    f"config.yaml input name {name!r} is not a model input; "
                    f"the model takes: {', '.join(self._inputs)}"
                )
            self._tensor_name = name
        else:
            absent = [f for f in config.features if f not in self._inputs]
            if absent:
                raise ValueError(f"model has no input(s) named {', '.join(absent)}")

    @classmethod
    def open(
        cls,
        *,
        model_dir: Path,
        config: ModelConfig,
        intra_op_threads: int = 1,
        cache: VerdictCache | None = None,
    ) -> OnnxRunner:
        """Verify the artifact, then open a session on it."""
        path = model_dir / config.weights
        session = open_onnx_session(
            path, root=model_dir, intra_op_threads=intra_op_threads, cache=cache
        )
        return cls(session, config)

    @property
    def features(self) -> list[str]:
        return self._config.features

    def _choose_output(self) -> str:
        outputs = self._session.get_outputs()
        if any(o.type.startswith("seq(map") for o in outputs) and not any(
            o.name == "probabilities" for o in outputs
        ):
            raise ValueError("model outputs a ZipMap; export it with zipmap=False")
        if self._config.task is Task.REGRESSION:
            return str(outputs[0].name)
        names = [o.name for o in outputs]
        if "probabilities" in names:
            return "probabilities"
        floats = [o for o in outputs if o.type in ("tensor(float)", "tensor(double)")]
        if not floats:
            raise ValueError(f"model has no float output; outputs: {', '.join(names)}")
        return str(floats[-1].name)

    def _feed(self, x: NDArray[np.float32]) -> dict[str, NDArray[Any]]:
        if self._config.input.kind is InputKind.TENSOR:
            name = self._tensor_name
            return {name: x.astype(np.float64) if name in self._double else x}
        feed: dict[str, NDArray[Any]] = {}
        for i, name in enumerate(self._config.features):
            column = np.ascontiguousarray(x[:, i : i + 1])
            feed[name] = column.astype(np.float64) if name in self._double else column
        return feed

    def predict(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        (raw,) = self._session.run([self._output], self._feed(x))
        out = _to_output(self._config, np.asarray(raw), self._classes)
        if out.shape[0] != x.shape[0]:
            raise ValueError(f"model returned {out.shape[0]} rows for {x.shape[0]} inputs")
        return out


class SkopsRunner:
    """A scikit-learn estimator loaded from skops with trusted types only."""

    def __init__(self, model: Any, config: ModelConfig) -> None:
        self._model = model
        self._config = config
        classes = getattr(model, "classes_", None)
        self._classes: list[Any] = list(classes) if classes is not None else [0, 1]

    @classmethod
    def open(
        cls, *, model_dir: Path, config: ModelConfig, cache: VerdictCache | None = None
    ) -> SkopsRunner:
        return cls(load_skops(model_dir / config.weights, root=model_dir, cache=cache), config)

    @property
    def features(self) -> list[str]:
        return self._config.features

    def predict(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        if self._config.task is Task.REGRESSION:
            return _to_output(self._config, self._model.predict(x), self._classes)
        return _to_output(self._config, self._model.predict_proba(x), self._classes)


def open_runner(
    *,
    model_dir: Path,
    config: ModelConfig,
    intra_op_threads: int = 1,
    cache: VerdictCache | None = None,
) -> Runner:
    """An in-process runner for a verified artifact of the declared format."""
    if config.format is ArtifactFormat.ONNX:
        return OnnxRunner.open(
            model_dir=model_dir, config=config, intra_op_threads=intra_op_threads, cache=cache
        )
    return SkopsRunner.open(model_dir=model_dir, config=config, cache=cache)


def predict_batched(runner: Runner, x: NDArray[np.float32], *, batch_size: int) -> NDArray[Any]:
    """Run in batches of exactly `batch_size` rows (bounding peak memory) and concatenate the
    outputs. A short last batch is padded by repeating its last row, and the padding's outputs
    dropped: runtimes pick kernels by batch size (onnxruntime's LinearClassifier rounds
    differently below about 6,000 rows), so a row's score must not depend on how many rows it
    was scored with, or a partitioned benchmark would not give the whole one's scores."""
    n = x.shape[0]
    if n == 0:
        return runner.predict(x)
    parts = []
    for start in range(0, n, batch_size):
        batch = x[start : start + batch_size]
        rows = batch.shape[0]
        if rows < batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - rows, axis=0)])
        parts.append(runner.predict(batch)[:rows])
    return np.concatenate(parts, axis=0)


@dataclass(frozen=True)
class InferenceResult:
    """Model outputs, or why there are none."""

    status: RunStatus
    proba: NDArray[np.float64] | None
    message: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.COMPLETED


def predict_proba(
    *,
    model_dir: Path,
    config: ModelConfig,
    frame: pd.DataFrame,
    timeout_s: float,
    memory_mb: int,
    batch_size: int = 65536,
    intra_op_threads: int = 1,
) -> InferenceResult:
    """Load and run the model in a worker process with RLIMIT_AS and a wall-clock timeout."""
    started = time.perf_counter()

    def result(status: RunStatus, message: str, proba: Any = None) -> InferenceResult:
        return InferenceResult(status, proba, message, time.perf_counter() - started)

    try:
        x = feature_matrix(frame, config.features)
    except InferenceInputError as exc:
        return result(RunStatus.ERROR, str(exc))
    with tempfile.TemporaryDirectory(prefix="shipyard-infer-") as tmp:
        job_dir = Path(tmp)
        np.save(job_dir / "features.npy", x, allow_pickle=False)
        job = {
            "model_dir": str(model_dir.resolve()),
            "config": config.model_dump(mode="json"),
            "batch_size": batch_size,
            "intra_op_threads": intra_op_threads,
            "memory_mb": memory_mb,
        }
        (job_dir / "job.json").write_text(json.dumps(job))
        log_path = job_dir / "worker.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "evaluators.artifacts.inference", str(job_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=worker_env(intra_op_threads),
                cwd=job_dir,
                start_new_session=True,  # so a timeout kills the whole process group
            )
            try:
                returncode = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return result(
                    RunStatus.TIMED_OUT, f"inference did not finish within {timeout_s:g} s"
                )
        outcome_path = job_dir / "result.json"
        if returncode != 0 or not outcome_path.exists():
            return result(RunStatus.ERROR, describe_exit(returncode, memory_mb, log_tail(log_path)))
        outcome = json.loads(outcome_path.read_text())
        if outcome["status"] != "ok":
            return result(RunStatus.ERROR, str(outcome["message"]))
        proba = np.load(job_dir / "output.npy", allow_pickle=False)
        return result(RunStatus.COMPLETED, "ok", proba.astype(np.float64, copy=False))


def _run_job(job_dir: Path) -> dict[str, str]:
    job = json.loads((job_dir / "job.json").read_text())
    limit_memory(int(job["memory_mb"]))
    try:
        config = ModelConfig.model_validate(job["config"])
        runner = open_runner(
            model_dir=Path(job["model_dir"]),
            config=config,
            intra_op_threads=int(job["intra_op_threads"]),
        )
        x = np.load(job_dir / "features.npy", mmap_mode="r", allow_pickle=False)
        out = predict_batched(runner, x, batch_size=int(job["batch_size"]))
        np.save(job_dir / "output.npy", np.asarray(out, dtype=np.float64), allow_pickle=False)
    except Exception as exc:  # MemoryError included: described, never raised to the caller
        return {"status": "error", "message": describe_failure(exc, int(job["memory_mb"]))}
    return {"status": "ok", "message": ""}


def main(argv: list[str]) -> int:
    """Worker entry point: `python -m evaluators.artifacts.inference JOB_DIR`."""
    job_dir = Path(argv[1])
    outcome = _run_job(job_dir)
    (job_dir / "result.json").write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))


__all__ = [
    "InferenceInputError",
    "InferenceResult",
    "OnnxRunner",
    "Runner",
    "SkopsRunner",
    "feature_matrix",
    "open_runner",
    "predict_batched",
    "predict_proba",
]
