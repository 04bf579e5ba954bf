"""Brier, log loss, metric row statistics and calibration bins as sums that merge by addition.

Per-row terms come from the metrics' own functions (evaluators/metrics/sums.py), so the clipping
of log loss and the decision rule (score >= threshold) are the ones every other path uses;
calibration uses calibration.py's equal-width bin rule. Counts are int64 and exact; loss terms
are summed in fixed point (`exact.py`), so their totals are identical whatever the
partitioning; so are calibration's Σp per bin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluators.metrics.sums import RowStats, binary_log_loss_terms, brier_terms
from evaluators.statistics.mergeable.counts import checked_rows
from evaluators.statistics.mergeable.exact import (
    FIXED_LIMBS,
    WIDE_LIMBS,
    fixed_point,
    fixed_to_float,
    grouped_fixed_sum,
    grouped_wide_fixed_sum,
    wide_to_float,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]

MODELS = ("candidate", "baseline")


def loss_terms(*, label: AnyArray, score: AnyArray) -> FloatArray:
    """(n, 2) per-row [squared error, log loss] of one model's probabilities."""
    brier = brier_terms(y_true=label, y_score=score, threshold=0.5).terms
    loss = binary_log_loss_terms(y_true=label, y_score=score, threshold=0.5).terms
    assert brier is not None and loss is not None
    squared, logs = brier[1], loss[1]
    assert squared is not None and logs is not None
    return np.stack([squared, logs], axis=1)


@dataclass(frozen=True)
class LossSums:
    """Per segment: rows, positives, and per model (candidate, baseline) the sums of squared
    error and log loss (exact fixed-point limbs)."""

    rows: IntArray  # (k,)
    positives: IntArray  # (k,)
    limbs: IntArray  # (k, 2 models, 2 terms, FIXED_LIMBS)

    def __add__(self, other: LossSums) -> LossSums:
        return LossSums(
            self.rows + other.rows, self.positives + other.positives, self.limbs + other.limbs
        )

    @property
    def sums(self) -> FloatArray:
        """(k, 2 models, 2 terms) the sums as floats."""
        return fixed_to_float(self.limbs)

    def _mean(self, term: int) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = self.sums[:, :, term] / self.rows[:, None]
        return np.asarray(np.where(self.rows[:, None] > 0, value, np.nan), dtype=np.float64)

    @property
    def brier(self) -> FloatArray:
        """(k, 2) mean squared error per segment and model; NaN for an empty segment."""
        return self._mean(0)

    @property
    def log_loss(self) -> FloatArray:
        """(k, 2) mean log loss per segment and model; NaN for an empty segment."""
        return self._mean(1)


def fixed_terms(*, label: AnyArray, candidate: AnyArray, baseline: AnyArray) -> IntArray:
    """(n, 4) fixed-point row terms: candidate [squared, log], baseline [squared, log]; column
    by column in memory (each column is summed on its own, once per segment column)."""
    return np.asfortranarray(
        fixed_point(
            np.concatenate(
                [loss_terms(label=label, score=candidate), loss_terms(label=label, score=baseline)],
                axis=1,
            )
        )
    )


def loss_sums(
    *,
    label: AnyArray,
    candidate: AnyArray,
    baseline: AnyArray,
    codes: AnyArray | None = None,
    n_segments: int = 1,
    fixed: IntArray | None = None,
) -> LossSums:
    """One partition's loss sums (codes None: one segment, all rows). `fixed`: the rows'
    fixed-point terms [candidate's 2, baseline's 2] when the caller has them already."""
    cand, labels = checked_rows(candidate, label)
    base, _ = checked_rows(baseline, label)
    key = np.zeros(labels.shape[0], np.int64) if codes is None else np.asarray(codes, np.int64)
    if fixed is None:
        fixed = fixed_terms(label=labels, candidate=cand, baseline=base)
    limbs = np.empty((n_segments, 2, 2, FIXED_LIMBS), np.int64)
    for model in range(2):
        for term in range(2):
            limbs[:, model, term] = grouped_fixed_sum(key, fixed[:, 2 * model + term], n_segments)
    return LossSums(
        rows=np.bincount(key, minlength=n_segments).astype(np.int64),
        positives=np.bincount(key, weights=labels, minlength=n_segments).astype(np.int64),
        limbs=limbs,
    )


@dataclass(frozen=True)
class StatSums:
    """One family of a metric's row statistics (metrics/sums.py: confusion cells, or loss terms)
    summed per segment, bootstrap row group and model: cells as int64 counts, terms as exact
    wide fixed-point limbs. The merged sums, and every replicate made from them, are the same
    whatever the partitioning; a metric's own `finish` turns them into values."""

    cells: IntArray | None  # (k, groups, 2 models, width): rows per cell
    limbs: IntArray | None = None  # (k, groups, 2 models, width, WIDE_LIMBS): term sums

    def __add__(self, other: StatSums) -> StatSums:
        return StatSums(
            None if self.cells is None or other.cells is None else self.cells + other.cells,
            None if self.limbs is None or other.limbs is None else self.limbs + other.limbs,
        )

    def totals(self, model: int) -> FloatArray:
        """(k, width) one model's sums over all rows of each segment (one rounding each)."""
        if self.cells is not None:
            return np.asarray(self.cells[:, :, model].sum(axis=1), dtype=np.float64)
        assert self.limbs is not None
        return wide_to_float(self.limbs[:, :, model].sum(axis=1))

    def replicates(self, model: int, weights: IntArray) -> FloatArray:
        """(replicates, k, width) one model's sums reweighted by (replicates, groups) weights."""
        grouped = (
            self.cells[:, :, model].astype(np.float64)
            if self.cells is not None
            else wide_to_float(self.limbs[:, :, model])  # type: ignore[index]
        )
        return np.asarray(np.einsum("rg,kgw->rkw", weights.astype(np.float64), grouped))


def stat_sums(
    row_stats: Callable[..., RowStats],
    *,
    label: AnyArray,
    candidate: AnyArray,
    baseline: AnyArray,
    threshold: float = 0.5,
    codes: AnyArray | None = None,
    n_segments: int = 1,
    group: IntArray | None = None,
    groups: int = 1,
) -> StatSums:
    """One partition's sums of `row_stats` for both models; `group` is each row's bootstrap
    group (None: one group)."""
    labels = np.asarray(label)
    n = labels.shape[0]
    key = np.zeros(n, np.int64) if codes is None else np.asarray(codes, np.int64)
    if group is not None:
        key = key * groups + group
    keys = n_segments * groups
    cells: IntArray | None = None
    limbs: IntArray | None = None
    for model, scores in enumerate((candidate, baseline)):
        stats = row_stats(y_true=labels, y_score=scores, threshold=threshold)
        width = stats.width
        if stats.cells is not None:
            if cells is None:
                cells = np.empty((keys, 2, width), np.int64)
            found = np.bincount(key * width + stats.cells, minlength=keys * width)
            cells[:, model] = found.reshape(-1, width)
            continue
        if limbs is None:
            limbs = np.empty((keys, 2, width, WIDE_LIMBS), np.int64)
        for column, term in enumerate(stats.terms or ()):
            values = np.ones(n) if term is None else term  # a column of ones counts the rows
            limbs[:, model, column] = grouped_wide_fixed_sum(key, values, keys)
    return StatSums(
        None if cells is None else cells.reshape(n_segments, groups, *cells.shape[1:]),
        None if limbs is None else limbs.reshape(n_segments, groups, *limbs.shape[1:]),
    )


@dataclass(frozen=True)
class CalibrationBins:
    """Equal-width reliability bins over [0, 1] per model (candidate, baseline)."""

    count: IntArray  # (2, bins)
    positives: IntArray  # (2, bins)
    predicted_limbs: IntArray  # (2, bins, FIXED_LIMBS) exact sums of the probabilities

    def __add__(self, other: CalibrationBins) -> CalibrationBins:
        return CalibrationBins(
            self.count + other.count,
            self.positives + other.positives,
            self.predicted_limbs + other.predicted_limbs,
        )

    @property
    def predicted(self) -> FloatArray:
        """(2, bins) sums of the probabilities."""
        return fixed_to_float(self.predicted_limbs)

    @property
    def ece_equal_width(self) -> FloatArray:
        """(2,) expected calibration error: Σ_bins |Σp - Σy| / rows (NaN with no rows)."""
        total = self.count.sum(axis=1).astype(np.float64)
        gap = np.abs(self.predicted - self.positives).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.where(total > 0, gap / total, np.nan), dtype=np.float64)


def calibration_bins(
    *, label: AnyArray, candidate: AnyArray, baseline: AnyArray, bins: int
) -> CalibrationBins:
    """One partition's bins; bin b holds scores in [b/bins, (b+1)/bins) as calibration.py."""
    cand, labels = checked_rows(candidate, label)
    base, _ = checked_rows(baseline, label)
    count = np.empty((2, bins), np.int64)
    positives = np.empty((2, bins), np.int64)
    predicted = np.empty((2, bins, FIXED_LIMBS), np.int64)
    for model, p in enumerate((cand, base)):
        width_bin = np.multiply(p, bins).astype(np.int64)
        np.clip(width_bin, 0, bins - 1, out=width_bin)
        count[model] = np.bincount(width_bin, minlength=bins)
        positives[model] = np.bincount(width_bin, weights=labels, minlength=bins)
        predicted[model] = grouped_fixed_sum(width_bin, fixed_point(p), bins)
    return CalibrationBins(count, positives, predicted)
