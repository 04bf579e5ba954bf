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


def delong_paired_se(
    *, difference: FloatArray, labels: AnyArray, codes: IntArray | None, n_segments: int
) -> FloatArray:
    """SE of AUC_candidate - AUC_baseline per segment (DeLong, DeLong & Clarke-Pearson 1988).

    `difference` is each row's candidate placement minus its baseline placement; the variance
    is var(positives' differences)/P + var(negatives' differences)/N within each segment.
    """
    if codes is None:
        cell = np.asarray(labels, dtype=np.int64)
    else:
        cell = np.multiply(codes, 2, dtype=np.int64)
        np.add(cell, labels, out=cell, casting="unsafe")  # labels are 0/1
    count = np.bincount(cell, minlength=2 * n_segments).reshape(n_segments, 2)
    total = np.bincount(cell, weights=difference, minlength=2 * n_segments)
    squares = np.bincount(cell, weights=difference * difference, minlength=2 * n_segments)
    total, squares = total.reshape(n_segments, 2), squares.reshape(n_segments, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.maximum(squares - total * total / count, 0.0) / (count - 1)
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
    row_group: IntArray  # (n,)
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
    row_group = rng.integers(0, count, size=n_rows, dtype=np.int64)
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
