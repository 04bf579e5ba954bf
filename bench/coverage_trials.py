"""Coverage of nominal 95% paired AUC-delta intervals over many simulated trials.

Each batch is 1000 independent binormal trials with a known true difference (see
tests/test_statistical_honesty.py); batches use different seeds. Usage:
python bench/coverage_trials.py [--batches 5] [--overall-trials 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_statistical_honesty import (  # noqa: E402
    TRIALS,
    overall_coverage,
    segment_coverage,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--overall-trials", type=int, default=2000)
    args = parser.parse_args()
    for method in ("delong", "bootstrap"):
        start = time.perf_counter()
        shares = [segment_coverage(seed=100 + b, method=method) for b in range(args.batches)]
        trials = TRIALS * args.batches
        mean = sum(shares) / len(shares)
        print(
            f"segment engine, {method:9s}: coverage {mean:.4f} over {trials} trials "
            f"(batches {', '.join(f'{s:.3f}' for s in shares)}) "
            f"in {time.perf_counter() - start:.1f} s"
        )
    for method in ("delong", "bootstrap"):
        start = time.perf_counter()
        share = overall_coverage(seed=200, method=method, trials=args.overall_trials)
        print(
            f"compare overall, {method:9s}: coverage {share:.4f} over {args.overall_trials} "
            f"trials in {time.perf_counter() - start:.1f} s"
        )


if __name__ == "__main__":
    main()
