"""Benchmark: the mergeable (two-pass, partitioned) statistics against the local engine.

Rows are generated chunk by chunk (as partitions); the mergeable path runs pass 1 per chunk
(count tables, loss sums, calibration bins, hashed-bootstrap sums), merges, prepares, runs pass
2 per chunk (DeLong moments), merges and finishes, overall and for 3 segment columns. The local
engine then runs `compare_engine.estimate` (ROC AUC with DeLong, Brier and log loss with the
bootstrap) on the concatenated rows for the same columns, in the same process. Prints both times
and their ratio, and checks that the two agree. Usage:
python bench/bench_mergeable.py [--rows 10000000] [--chunk 1000000] [--resamples 200]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from functools import reduce
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.candidate import Task
from evaluators.metrics.registry import get_metric
from evaluators.statistics.calibration import calibration_stats
from evaluators.statistics.compare_engine import PairedData, estimate
from evaluators.statistics.intervals import make_poisson_bootstrap
from evaluators.statistics.mergeable.bootstrap import HashedPoisson
from evaluators.statistics.mergeable.evaluation import (
    OVERALL,
    Layout,
    Rows,
    finish,
    first_pass,
    merge_first,
    prepare,
    second_pass,
)

SEGMENTS = {"region": 8, "device": 5, "tier": 6}


def chunk(start: int, n: int, seed: int) -> Rows:
    """Rows start..start+n: labels, two correlated probability models, 3 segment columns."""
    rng = np.random.default_rng([seed, start])
    y = (rng.random(n) < 0.3).astype(np.int64)
    z1 = rng.standard_normal(n)
    z2 = 0.8 * z1 + 0.6 * rng.standard_normal(n)
    return Rows(
        row_id=np.arange(start, start + n, dtype=np.int64),
        label=y,
        candidate=1 / (1 + np.exp(-(z1 + 1.2 * y - 1))),
        baseline=1 / (1 + np.exp(-(z2 + 1.0 * y - 1))),
        codes={name: rng.integers(0, k, n) for name, k in SEGMENTS.items()},
    )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=200)
    args = parser.parse_args()
    starts = range(0, args.rows, args.chunk)
    sizes = [min(args.chunk, args.rows - s) for s in starts]
    layout = Layout(
        columns=SEGMENTS, bootstrap=HashedPoisson(seed=0, replicates=args.resamples, groups=256)
    )

    # Mergeable: generation is excluded from the time (a partition would be read, not made).
    t_first = t_second = 0.0
    firsts = []
    for start, size in zip(starts, sizes, strict=True):
        rows = chunk(start, size, seed=0)
        t0 = time.perf_counter()
        firsts.append(first_pass(rows, layout))
        t_first += time.perf_counter() - t0
    t0 = time.perf_counter()
    first = merge_first(firsts)
    del firsts
    prepared = prepare(first, layout)
    t_merge = time.perf_counter() - t0
    seconds = []
    for start, size in zip(starts, sizes, strict=True):
        rows = chunk(start, size, seed=0)
        t0 = time.perf_counter()
        seconds.append(second_pass(rows, prepared, layout))
        t_second += time.perf_counter() - t0
    t0 = time.perf_counter()
    result = finish(first, reduce(lambda a, b: a + b, seconds), layout)
    t_finish = time.perf_counter() - t0
    mergeable = t_first + t_merge + t_second + t_finish
    mergeable_peak = peak_mb()
    del prepared, first, seconds

    # Local engine on the whole rows, same columns and metrics.
    parts = [chunk(start, size, seed=0) for start, size in zip(starts, sizes, strict=True)]
    y = np.concatenate([p.label for p in parts])
    cand = np.concatenate([p.candidate for p in parts])
    base = np.concatenate([p.baseline for p in parts])
    codes = {name: np.concatenate([p.codes[name] for p in parts]) for name in SEGMENTS}
    del parts
    metrics = [get_metric(name, task=Task.BINARY) for name in ("roc_auc", "brier", "log_loss")]
    t0 = time.perf_counter()
    data = PairedData(y, cand, base, Task.BINARY, 0.5)
    boot = make_poisson_bootstrap(n_rows=args.rows, resamples=args.resamples, seed=0)
    local = {
        column: estimate(
            data=data,
            codes=None if column == OVERALL else codes[column],
            n_segments=k,
            metrics=metrics,
            delong={"roc_auc"},
            bootstrap=boot,
        )
        for column, k in layout.segments().items()
    }
    for scores in (cand, base):
        calibration_stats(y_true=y, probability=scores, bins=10)
    local_seconds = time.perf_counter() - t0

    worst_auc = worst_se = 0.0
    for column in layout.segments():
        found, here = result.columns[column], local[column]["roc_auc"]
        worst_auc = max(worst_auc, float(np.abs(found.auc[0].auc - here.candidate).max()))
        worst_se = max(worst_se, float(np.abs(found.delong.se_delta / here.se - 1).max()))
    print(f"rows {args.rows:,} in {len(sizes)} chunks of {args.chunk:,}; 3 segment columns")
    print(
        f"mergeable: {mergeable:.2f} s (pass 1 {t_first:.2f}, merge+prepare {t_merge:.2f}, "
        f"pass 2 {t_second:.2f}, finish {t_finish:.2f}); peak so far {mergeable_peak:.0f} MB"
    )
    print(f"local engine: {local_seconds:.2f} s; peak {peak_mb():.0f} MB (process, both paths)")
    print(f"ratio mergeable / local: {mergeable / local_seconds:.2f}")
    print(f"agreement: max |AUC diff| {worst_auc:.1e}, max DeLong SE relative diff {worst_se:.1e}")


if __name__ == "__main__":
    main()
