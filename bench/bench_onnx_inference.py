"""Batched ONNX inference: our runner and worker path vs bare onnxruntime on the same batches.

Run: `python bench/bench_onnx_inference.py [--variant candidate_better] [--rows 200000]`.
Goal: the in-process runner reaches >= 90% of bare throughput. The worker path also pays for
process start-up, imports, artifact verification and .npy transfer; it is reported as measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import onnxruntime as ort
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluators.artifacts.inference import OnnxRunner, feature_matrix, predict_proba  # noqa: E402
from evaluators.candidate import parse_model_config  # noqa: E402


def _best(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="candidate_better")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=65536)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model_dir = ROOT / "fixtures" / "registry" / args.variant / "models" / "churn"
    config = parse_model_config((model_dir / "config.yaml").read_text())
    bench = pd.read_parquet(ROOT / "fixtures" / "benchmark" / "churn_benchmark.parquet")
    frame = pd.concat([bench] * (args.rows // len(bench) + 1), ignore_index=True).iloc[: args.rows]
    x = feature_matrix(frame, config.features)
    batches = [x[i : i + args.batch_size] for i in range(0, len(x), args.batch_size)]

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    bare = ort.InferenceSession(
        str(model_dir / config.weights), options, providers=["CPUExecutionProvider"]
    )
    name = config.input.name or bare.get_inputs()[0].name
    runner = OnnxRunner.open(model_dir=model_dir, config=config, intra_op_threads=args.threads)

    def run_bare() -> None:
        for batch in batches:
            bare.run(None, {name: batch})

    def run_runner() -> None:
        for batch in batches:
            runner.predict(batch)

    def run_worker() -> None:
        result = predict_proba(
            model_dir=model_dir,
            config=config,
            frame=frame,
            timeout_s=600,
            memory_mb=8192,
            batch_size=args.batch_size,
            intra_op_threads=args.threads,
        )
        assert result.ok, result.message

    run_bare()
    run_runner()
    t_bare = _best(run_bare, args.repeats)
    t_runner = _best(run_runner, args.repeats)
    t_worker = _best(run_worker, args.repeats)
    rows = len(x)
    print(f"model {args.variant}, {rows:,} rows, batch {args.batch_size}, {args.threads} thread(s)")
    for label, seconds in (
        ("bare onnxruntime", t_bare),
        ("OnnxRunner (in-process)", t_runner),
        ("predict_proba (worker)", t_worker),
    ):
        print(
            f"  {label:26s} {seconds * 1e3:9.1f} ms  {rows / seconds:12,.0f} rows/s  "
            f"{t_bare / seconds:6.1%} of bare"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
