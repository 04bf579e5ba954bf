"""`shipyard evaluate` vs a plain script doing the same inference and an AUC, whole processes.

Run: `python bench/bench_evaluate_cli.py [--rounds 5] [--html]`.
The plain script (written to a temporary file) reads the benchmark parquet with pandas, opens an
onnxruntime InferenceSession on both fixture models and prints sklearn's roc_auc_score of each:
nothing else. `shipyard evaluate` additionally verifies the artifacts, runs both models in a
limited worker process, computes intervals per segment, measures latency and renders the report.
Both commands run interleaved (A B A B ...) so a busy machine slows both alike; medians and the
median of the pairwise ratios are printed. `--reference DIR` times another checkout's
`shipyard evaluate` (e.g. `git archive COMMIT | tar -x -C DIR`) instead of the plain script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "fixtures" / "registry"

PLAIN = """
import sys
import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.metrics import roc_auc_score

import yaml

frame = pd.read_parquet(sys.argv[1])
y = (frame["churned"].astype(str) == "1").to_numpy()
for model_dir in sys.argv[2:]:
    config = yaml.safe_load(open(model_dir + "/config.yaml"))
    session = ort.InferenceSession(model_dir + "/" + config["weights"])
    x = np.ascontiguousarray(frame[config["features"]].to_numpy(np.float32))
    (proba,) = session.run(["probabilities"], {config["input"]["name"]: x})
    print(model_dir, roc_auc_score(y, proba[:, 1]))
"""


def _list(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def _time(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--html", action="store_true", help="also render the HTML report")
    parser.add_argument(
        "--reference", type=Path, help="another checkout whose `shipyard evaluate` is timed instead"
    )
    args = parser.parse_args()
    candidate = REGISTRY / "candidate_better" / "models" / "churn"
    production = REGISTRY / "production" / "models" / "churn"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        plain = Path(tmp) / "plain.py"
        plain.write_text(PLAIN)
        report = Path(tmp) / ("report.html" if args.html else "report.json")
        ours = [
            sys.executable, "-m", "bot.cli.main", "evaluate", str(candidate),
            "--baseline", str(production),
            "--policy", str(REGISTRY / "shipyard.yml"),
            "--format", "html" if args.html else "json",
            "--output", str(report),
        ]  # fmt: skip
        reference = [
            sys.executable, str(plain),
            str(ROOT / "fixtures" / "benchmark" / "churn_benchmark.parquet"),
            str(candidate), str(production),
        ]  # fmt: skip
        reference_env, reference_cwd = env, ROOT
        if args.reference is not None:
            reference_cwd = args.reference.resolve()
            reference = [*ours[:-1], str(Path(tmp) / ("reference" + report.suffix))]
            reference_env = dict(os.environ, PYTHONPATH=str(reference_cwd))
        _time(ours, env)  # warm the page cache for both
        _time(reference, reference_env, reference_cwd)
        times_ours: list[float] = []
        times_plain: list[float] = []
        for _ in range(args.rounds):
            times_ours.append(_time(ours, env))
            times_plain.append(_time(reference, reference_env, reference_cwd))
    ratios = [a / b for a, b in zip(times_ours, times_plain, strict=True)]
    label = f"shipyard evaluate ({'html' if args.html else 'json'}):"
    print(f"{label} median {statistics.median(times_ours):.2f} s  ({_list(times_ours)})")
    name = "reference checkout:" if args.reference else "plain script:      "
    print(f"{name}      median {statistics.median(times_plain):.2f} s  ({_list(times_plain)})")
    print(f"ratio (pairwise median): {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
