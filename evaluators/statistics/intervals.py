"""Paired intervals and p-values: DeLong for ROC AUC, a Poisson bootstrap of grouped statistics.

Both models are scored on the same rows, so every interval is for the paired difference
(candidate - baseline). Intervals are normal: delta ± z·SE, with SE from DeLong's variance or
from the spread of the bootstrap resamples; p-values use the same SE, so an interval at level
1-α excludes zero exactly when p < α.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special  # ndtr/ndtri: scipy.stats' normal without its 1.5 s import

from evaluators.statistics.codes import CodeArray, compact_codes

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]

DEFAULT_GROUPS = 256


def normal_interval(
    *, delta: AnyArray, se: AnyArray, confidence: float | AnyArray
) -> tuple[FloatArray, FloatArray]:
    """delta ± z·se at a two-sided confidence level (scalar or one per entry)."""
    z = special.ndtri(0.5 + np.asarray(confidence, dtype=np.float64) / 2)
    half = z * np.asarray(se, dtype=np.float64)
    centre = np.asarray(delta, dtype=np.float64)
    return centre - half, centre + half


def normal_p_value(*, delta: AnyArray, se: AnyArray) -> FloatArray:
    """Two-sided p-value of 'no difference'; se = 0 gives 1 for delta = 0, else 0."""
    d = np.asarray(delta, dtype=np.float64)
    s = np.asarray(se, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(d) / s
    z = np.where(s > 0, z, np.where(d == 0, 0.0, np.inf))
    return np.asarray(2 * special.ndtr(-z), dtype=np.float64)


_PAIR_CHUNK = 1 << 20  # rows per step when pairing placements: 8 MB temporaries, not 80


@dataclass
class DeLongSums:
    """Per (segment, class): rows, and the sum and sum of squares of each row's candidate
    placement minus its baseline placement (DeLong, DeLong & Clarke-Pearson 1988).

    Rows are added in any order, so each model's placements can stay in that model's own
    (segment, score) order: no row-length array of differences is ever made.
    """

    count: IntArray  # (k, 2): class 0 = negatives, 1 = positives
    total: FloatArray
    squares: FloatArray

    @classmethod
    def zeros(cls, n_segments: int) -> DeLongSums:
        shape = (n_segments, 2)
        return cls(np.zeros(shape, np.int64), np.zeros(shape), np.zeros(shape))

    def add_pairs(
        self,
        *,
        candidate: FloatArray,
        baseline_by_row: FloatArray,
        rows: IntArray,
        labels: AnyArray,
        counts: IntArray,
    ) -> None:
        """`candidate`, `rows` and 0/1 `labels` are in (segment, score) order with `counts`
        rows per segment; `baseline_by_row` holds the baseline's placements in row order."""
        k = counts.shape[0]
        ends = np.cumsum(counts)
        starts = ends - counts
        n = candidate.shape[0]
        for lo in range(0, n, _PAIR_CHUNK):
            hi = min(lo + _PAIR_CHUNK, n)
            first = int(np.searchsorted(ends, lo, side="right"))
            last = int(np.searchsorted(ends, hi - 1, side="right"))
            within = slice(first, last + 1)
            spans = np.minimum(ends[within], hi) - np.maximum(starts[within], lo)
            cell = np.repeat(np.arange(2 * first, 2 * last + 2, 2, dtype=np.int64), spans)
            cell += labels[lo:hi].astype(np.int64)
            d = np.take(baseline_by_row, rows[lo:hi])
            np.subtract(candidate[lo:hi], d, out=d)
            self.count += np.bincount(cell, minlength=2 * k).reshape(k, 2)
            self.total += np.bincount(cell, weights=d, minlength=2 * k).reshape(k, 2)
            d *= d
            self.squares += np.bincount(cell, weights=d, minlength=2 * k).reshape(k, 2)

    def paired_se(self) -> FloatArray:
        """SE of AUC_candidate - AUC_baseline per segment: var(positives' differences)/P +
        var(negatives' differences)/N; NaN where a class has fewer than two rows."""
        count = self.count
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = np.maximum(self.squares - self.total * self.total / count, 0.0) / (count - 1)
            var_delta = (variance / count).sum(axis=1)
        return np.asarray(np.sqrt(np.where((count >= 2).all(axis=1), var_delta, np.nan)))


@dataclass(frozen=True)
class PoissonBootstrap:
    """Poisson(1) weights per random row-group: `weights[r, g]` multiplies group g in resample r.

    Rows are assigned to groups at random, so group totals are i.i.d. and a resample of the
    group totals is a bootstrap of the rows, with the cost of the groups, not of the rows.
    """

    resamples: int
    seed: int
    groups: int
    row_group: CodeArray  # (n,), compact: widen before arithmetic
    weights: FloatArray  # (resamples, groups)

    def resample(self, sums: FloatArray) -> FloatArray:
        """(k, groups, m) per-group sums -> (resamples, k, m) reweighted totals."""
        k, groups, width = sums.shape
        flat = np.ascontiguousarray(sums.transpose(1, 0, 2)).reshape(groups, k * width)
        return np.asarray(self.weights @ flat, dtype=np.float64).reshape(-1, k, width)

    def describe(self) -> str:
        return (
            f"paired Poisson bootstrap on sufficient statistics, {self.resamples} resamples, "
            f"seed {self.seed}: Poisson(1) weights per random row-group ({self.groups} groups) "
            "reweight per-group sums; normal interval and p-value from the bootstrap SE"
        )


def make_poisson_bootstrap(
    *, n_rows: int, resamples: int, seed: int, groups: int = DEFAULT_GROUPS
) -> PoissonBootstrap:
    """Seeded groups and weights; the same seed gives the same intervals."""
    rng = np.random.default_rng(seed)
    count = max(1, min(groups, n_rows))
    # Drawn as int64 (the stream a seed has always given), kept compact: 20 MB, not 80, at 10M.
    row_group = compact_codes(rng.integers(0, count, size=n_rows, dtype=np.int64), count)
    weights = rng.poisson(1.0, size=(resamples, count)).astype(np.float64)
    return PoissonBootstrap(resamples, seed, count, row_group, weights)


def bootstrap_se(deltas: FloatArray) -> FloatArray:
    """Standard deviation over resamples (axis 0), ignoring undefined resamples."""
    finite = np.isfinite(deltas)
    count = finite.sum(axis=0)
    clean = np.where(finite, deltas, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = clean.sum(axis=0) / count
        spread = (np.where(finite, deltas - mean, 0.0) ** 2).sum(axis=0) / (count - 1)
    return np.asarray(np.where(count >= 2, np.sqrt(spread), np.nan), dtype=np.float64)
