"""Exact rank metrics (ROC AUC, average precision) per segment from one stable sort per model.

Rows are walked in ascending score order, grouped by segment; tied scores form one run. Every
quantity is then a vectorised sum over runs: no per-row Python, no sort per segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]


@dataclass(frozen=True)
class Runs:
    """Runs of tied scores in a score-sorted sequence grouped by segment."""

    segment: IntArray  # segment of each run
    starts: IntArray  # first position of each run
    lengths: IntArray
    pos: FloatArray  # (weighted) positives in the run
    neg: FloatArray
    pos_before: FloatArray  # positives in lower-scored runs of the same segment
    neg_before: FloatArray
    positives: FloatArray  # per segment
    negatives: FloatArray  # per segment


def tie_runs(
    *,
    score_sorted: AnyArray,
    label_sorted: AnyArray,
    weight_sorted: FloatArray | None = None,
    segment_sorted: IntArray | None = None,
    n_segments: int = 1,
    distinct: bool = False,
) -> Runs:
    """Runs of a sequence sorted by (segment, score); labels are 0/1.

    `distinct` promises no tied scores (checked once on the whole column by the caller), so
    every row is its own run and the scores need not be compared.
    """
    n = score_sorted.shape[0]
    if distinct:
        starts = np.arange(n, dtype=np.int64)
        lengths = np.ones(n, dtype=np.int64)
    else:
        boundary = np.ones(n, dtype=bool)
        boundary[1:] = score_sorted[1:] != score_sorted[:-1]
        if segment_sorted is not None:
            boundary[1:] |= segment_sorted[1:] != segment_sorted[:-1]
        starts = np.flatnonzero(boundary).astype(np.int64)
        lengths = np.diff(np.append(starts, n)).astype(np.int64)
    labels = label_sorted if label_sorted.dtype == np.float64 else label_sorted.astype(np.float64)
    if n == 0:
        empty = np.zeros(0)
        zeros = np.zeros(n_segments)
        return Runs(starts, starts, lengths, empty, empty, empty, empty, zeros, zeros.copy())
    if n == starts.shape[0] and weight_sorted is None:  # no ties: one row per run
        pos = labels
    elif weight_sorted is None:
        pos = np.add.reduceat(labels, starts)
    else:
        pos = np.add.reduceat(labels * weight_sorted, starts)
    neg = (lengths if weight_sorted is None else np.add.reduceat(weight_sorted, starts)) - pos
    if segment_sorted is None:
        segment = np.zeros(starts.shape[0], dtype=np.int64)
    else:
        segment = segment_sorted if distinct else segment_sorted[starts]
    # Segments are contiguous: totals before a run within its segment are running totals
    # minus the running total at the segment's first run.
    changes = np.ones(segment.shape[0], dtype=bool)
    changes[1:] = segment[1:] != segment[:-1]
    first = np.flatnonzero(changes)
    runs_per_segment = np.diff(np.append(first, segment.shape[0]))
    running_pos = np.cumsum(pos) - pos
    running_neg = np.cumsum(neg) - neg
    return Runs(
        segment=segment,
        starts=starts,
        lengths=lengths,
        pos=pos,
        neg=neg,
        pos_before=running_pos - np.repeat(running_pos[first], runs_per_segment),
        neg_before=running_neg - np.repeat(running_neg[first], runs_per_segment),
        positives=np.asarray(
            np.bincount(segment, weights=pos, minlength=n_segments), dtype=np.float64
        ),
        negatives=np.asarray(
            np.bincount(segment, weights=neg, minlength=n_segments), dtype=np.float64
        ),
    )


def _safe_divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def auc_from_runs(runs: Runs, *, n_segments: int) -> FloatArray:
    """ROC AUC per segment (ties count one half); NaN where a class is missing."""
    concordant = runs.pos * (runs.neg_before + 0.5 * runs.neg)
    numerator = np.asarray(
        np.bincount(runs.segment, weights=concordant, minlength=n_segments), dtype=np.float64
    )
    return _safe_divide(numerator, runs.positives * runs.negatives)


def average_precision_from_runs(runs: Runs, *, n_segments: int) -> FloatArray:
    """Average precision per segment: sum over thresholds of precision x recall increment."""
    true_pos = runs.positives[runs.segment] - runs.pos_before
    predicted = true_pos + runs.negatives[runs.segment] - runs.neg_before
    precision = np.where(predicted > 0, true_pos / np.where(predicted > 0, predicted, 1), 0.0)
    numerator = np.asarray(
        np.bincount(runs.segment, weights=runs.pos * precision, minlength=n_segments),
        dtype=np.float64,
    )
    return _safe_divide(numerator, runs.positives)


def placements(runs: Runs, *, label_sorted: AnyArray) -> FloatArray:
    """DeLong's structural components for each element of the sorted sequence.

    A positive's component is the share of its segment's negatives scored below it (ties
    half); a negative's is the share of positives scored above it. Each averages to the AUC.
    """
    positives = runs.positives[runs.segment]
    negatives = runs.negatives[runs.segment]
    with np.errstate(invalid="ignore", divide="ignore"):
        for_positive = (runs.neg_before + 0.5 * runs.neg) / negatives
        for_negative = (positives - runs.pos_before - 0.5 * runs.pos) / positives
    if runs.starts.shape[0] == label_sorted.shape[0]:  # no ties: one row per run
        return np.where(label_sorted > 0, for_positive, for_negative)
    return np.where(
        label_sorted > 0,
        np.repeat(for_positive, runs.lengths),
        np.repeat(for_negative, runs.lengths),
    )


def quantile_bins(*, order: IntArray, score_sorted: AnyArray, bins: int) -> IntArray:
    """Equal-count bin of every row (original order); tied scores always share a bin."""
    n = order.shape[0]
    boundary = np.ones(n, dtype=bool)
    boundary[1:] = score_sorted[1:] != score_sorted[:-1]
    first = np.maximum.accumulate(np.where(boundary, np.arange(n), 0))
    out = np.empty(n, dtype=np.int64)
    out[order] = first * bins // max(n, 1)
    return out


def auc_from_histograms(pos: FloatArray, neg: FloatArray) -> FloatArray:
    """ROC AUC from (..., bins) label histograms in ascending score order."""
    below = np.cumsum(neg, axis=-1) - neg
    numerator = (pos * (below + 0.5 * neg)).sum(axis=-1)
    return _safe_divide(numerator, pos.sum(axis=-1) * neg.sum(axis=-1))


def average_precision_from_histograms(pos: FloatArray, neg: FloatArray) -> FloatArray:
    """Average precision from (..., bins) label histograms in ascending score order."""
    positives = pos.sum(axis=-1, keepdims=True)
    negatives = neg.sum(axis=-1, keepdims=True)
    true_pos = positives - (np.cumsum(pos, axis=-1) - pos)
    predicted = true_pos + negatives - (np.cumsum(neg, axis=-1) - neg)
    precision = np.where(predicted > 0, true_pos / np.where(predicted > 0, predicted, 1), 0.0)
    return _safe_divide((pos * precision).sum(axis=-1), positives[..., 0])


def weighted_rank_metric(
    *, y_true: AnyArray, y_score: AnyArray, sample_weight: AnyArray | None, kind: str
) -> float:
    """ROC AUC ("auc") or average precision ("ap") of one binary problem, exact."""
    score = np.asarray(y_score, dtype=np.float64)
    order = np.argsort(score, kind="stable")
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[order]
    runs = tie_runs(
        score_sorted=score[order], label_sorted=np.asarray(y_true)[order], weight_sorted=weight
    )
    value = (
        auc_from_runs(runs, n_segments=1)
        if kind == "auc"
        else average_precision_from_runs(runs, n_segments=1)
    )
    return float(value[0])
