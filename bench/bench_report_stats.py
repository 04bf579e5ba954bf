"""Benchmark: report statistics the straightforward way vs `compare`, at 100k, 1M and 10M rows.

Straightforward = scikit-learn metric calls inside a pandas groupby, and a bootstrap that
resamples rows. It runs at 100k rows with fewer resamples and is extrapolated linearly (said so
in the output). `compare` runs at each size in its own subprocess so its peak memory (maxrss)
is measured alone. Usage: python bench/bench_report_stats.py [--sizes 100000,1000000,10000000]
[--method auto|bootstrap] [--naive-resamples 100] [--skip-naive]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    from evaluators.policy import Policy

SEGMENT_VALUES = {"region": 8, "device": 5, "tier": 6}


def simulate(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Binary labels, two correlated probability models and three categorical segment columns."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    z1 = rng.standard_normal(n)
    z2 = 0.8 * z1 + 0.6 * rng.standard_normal(n)
    cand = 1 / (1 + np.exp(-(z1 + 1.2 * y - 1)))
    base = 1 / (1 + np.exp(-(z2 + 1.0 * y - 1)))
    frame = pd.DataFrame(
        {
            name: pd.Categorical.from_codes(
                rng.integers(0, k, n), categories=[f"{name}-{i}" for i in range(k)]
            )
            for name, k in SEGMENT_VALUES.items()
        }
    )
    return y, cand, base, frame


def policy_for(method: str) -> Policy:
    from evaluators.policy import Policy

    return Policy.model_validate(
        {
            "metrics": [
                {"name": "roc_auc", "margin": 0.002, "tolerance": 0.005},
                {"name": "log_loss"},
                {"name": "brier"},
                {"name": "f1"},
            ],
            "statistics": {"method": method},
        }
    )


def run_compare(n: int, method: str) -> dict[str, float]:
    """One size, in this process: time of `compare` and peak resident memory."""
    from evaluators.candidate import Task
    from evaluators.statistics.compare import compare

    y, cand, base, frame = simulate(n)
    policy = policy_for(method)
    data_mb = _rss_mb()
    start = time.perf_counter()
    result = compare(
        y_true=y, candidate=cand, baseline=base, segments=frame, policy=policy, task=Task.BINARY
    )
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    intervals = len(result.overall) + sum(len(s.metrics) for s in result.segments)
    # The yardsticks, on the same scores in the same process, after `compare`: one sort, one
    # stable argsort.
    start = time.perf_counter()
    np.sort(cand)
    sort_seconds = time.perf_counter() - start
    start = time.perf_counter()
    np.argsort(cand, kind="stable")
    argsort_seconds = time.perf_counter() - start
    return {
        "rows": n,
        "seconds": seconds,
        "peak_mb": peak_mb,
        "data_mb": data_mb,
        "intervals": intervals,
        "sort_seconds": sort_seconds,
        "argsort_seconds": argsort_seconds,
    }


def _rss_mb() -> float:
    """Resident memory now (Linux), MB: the inputs and libraries before `compare` starts."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def naive_overall_interval(n: int, resamples: int) -> float:
    """Seconds for one overall AUC-delta interval by resampling rows with scikit-learn."""
    from sklearn.metrics import roc_auc_score

    y, cand, base, _ = simulate(n)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    deltas = []
    for _ in range(resamples):
        rows = rng.integers(0, n, n)
        deltas.append(roc_auc_score(y[rows], cand[rows]) - roc_auc_score(y[rows], base[rows]))
    np.percentile(deltas, [2.5, 97.5])
    return time.perf_counter() - start


def naive_segment_points(n: int) -> float:
    """Seconds for per-segment point AUCs via pandas groupby + scikit-learn (no intervals)."""
    from sklearn.metrics import roc_auc_score

    y, cand, base, frame = simulate(n)
    frame = frame.assign(y=y, cand=cand, base=base)
    start = time.perf_counter()
    for column in SEGMENT_VALUES:
        frame.groupby(column, observed=True).apply(
            lambda g: roc_auc_score(g["y"], g["cand"]) - roc_auc_score(g["y"], g["base"]),
            include_groups=False,
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--method", default="auto", choices=["auto", "bootstrap"])
    parser.add_argument("--naive-resamples", type=int, default=100)
    parser.add_argument(
        "--skip-naive", action="store_true", help="time `compare` only (no straightforward run)"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_compare(args.child, args.method)))
        return

    naive_n, r = 100_000, args.naive_resamples
    one = naive_full = 0.0
    if not args.skip_naive:
        one = naive_overall_interval(naive_n, r) * 1000 / r
        segment_count = sum(SEGMENT_VALUES.values())
        groupby = naive_segment_points(naive_n)
        print(f"straightforward at {naive_n:,} rows (ran {r} row resamples, extrapolated to 1000):")
        print(f"  one overall AUC-delta bootstrap interval: {one:8.1f} s")
        print(
            f"  per-segment point AUCs via groupby:       {groupby:8.2f} s "
            f"({segment_count} segments)"
        )
        # Every segment interval costs about what the overall one does.
        naive_full = one * (1 + segment_count)
        print(
            f"  whole comparison, 1 + {segment_count} intervals (extrapolated): {naive_full:8.0f} s"
        )
        print()
    print(f"compare (method={args.method}; roc_auc DeLong unless bootstrap; log_loss, brier, f1 ")
    print(f"bootstrap 1000 resamples; segments {SEGMENT_VALUES}; calibration), one process each:")
    for n in [int(s) for s in args.sizes.split(",")]:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--method", args.method],
            check=True,
            capture_output=True,
            text=True,
        )
        found = json.loads(out.stdout.strip().splitlines()[-1])
        line = (
            f"  {n:>11,} rows: {found['seconds']:7.2f} s, peak RSS {found['peak_mb']:7.0f} MB "
            f"(inputs and libraries before it: {found['data_mb']:.0f} MB), "
            f"{found['intervals']} intervals; "
            f"{found['seconds'] / found['sort_seconds']:.0f}x one np.sort of the scores "
            f"({found['sort_seconds']:.3f} s), "
            f"{found['seconds'] / found['argsort_seconds']:.1f}x one stable argsort "
            f"({found['argsort_seconds']:.2f} s)"
        )
        if n == naive_n and not args.skip_naive:
            line += f"; {naive_full / found['seconds']:,.0f}x faster than straightforward"
            line += f" ({one / found['seconds']:,.0f}x vs its ONE overall interval)"
        print(line)


if __name__ == "__main__":
    main()
