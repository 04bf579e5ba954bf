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


def distinct_auc(
    *,
    label: AnyArray,
    counts: IntArray,
    positions: IntArray,
    before: IntArray,
    mask: npt.NDArray[np.bool_],
    placements: FloatArray | None,
) -> FloatArray:
    """Exact ROC AUC per segment of tie-free scores, and DeLong placements if asked.

    `label` (0/1 int8) is in (segment, score) order with `counts` rows per segment. With no
    ties every run is one row, so `auc_from_runs` and `placements` reduce to integer counts:
    a positive's placement is the negatives below it over the segment's negatives, a
    negative's the positives above it over the segment's positives. `positions` holds
    0..n-1; `before` and `mask` are scratch; `placements` (n,) is filled in label order.
    """
    n = label.shape[0]
    ends = np.cumsum(counts)
    starts = ends - counts
    # before[i]: positives at positions < i; a segment's own counts are differences of it.
    np.cumsum(label, dtype=np.int64, out=before[:n])
    before -= label
    total = int(np.count_nonzero(label))
    pos_start = np.where(starts < n, before[np.minimum(starts, n - 1)], total)
    pos_end = np.where(ends < n, before[np.minimum(ends, n - 1)], total)
    positives = pos_end - pos_start
    negatives = counts - positives
    neg_start = starts - pos_start
    # Sum over rows i of the positives after i = sum over positives of the rows before them
    # = concordant pairs + P(P-1)/2, with rows(after i) = pos_end - before[i] - label[i].
    filled = counts > 0
    summed = np.zeros_like(counts)
    if n:
        summed[filled] = np.add.reduceat(before, starts[filled])
    concordant = counts * pos_end - summed - positives - positives * (positives - 1) // 2
    pos_f, neg_f = positives.astype(np.float64), negatives.astype(np.float64)
    auc = _safe_divide(concordant.astype(np.float64), pos_f * neg_f)
    if placements is None:
        return auc
    is_neg = np.equal(label, 0, out=mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        for s in np.flatnonzero(counts).tolist():
            a, b = int(starts[s]), int(ends[s])
            out, below, neg = placements[a:b], before[a:b], is_neg[a:b]
            # Positive: rows before it, minus positives before it, minus earlier segments'
            # negatives. Negative: the segment's positives not yet seen.
            np.subtract(positions[a:b], below, out=out)
            out -= neg_start[s]
            np.subtract(pos_end[s], below, out=out, where=neg)
            np.divide(out, neg_f[s], out=out, where=~neg)
            np.divide(out, pos_f[s], out=out, where=neg)
    return auc


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


_SMALL_SORT = 1 << 16  # below this many rows numpy's stable argsort is fast enough
_SIGN = np.uint64(1 << 63)


def stable_order(
    scores: FloatArray, *, positions: IntArray | None = None, scratch: IntArray | None = None
) -> tuple[IntArray, FloatArray]:
    """`np.argsort(scores, kind="stable")` and the sorted scores, several times faster at scale.

    numpy sorts plain 64-bit integers with SIMD but argsorts floats with a merge sort. So each
    score becomes an order-preserving unsigned key whose high bits (scaled to the span actually
    used) are packed above the row number: sorting those integers orders rows by score and
    ties by row. Rows whose keys share the high bits but not the score are rare; only their
    groups are re-sorted exactly. Scores must not be NaN. `positions` (0..n-1) and `scratch`
    (n int64) are optional reusable buffers.
    """
    n = scores.shape[0]
    index_bits = max(n - 1, 1).bit_length()
    if n < _SMALL_SORT or index_bits > 40:
        order = np.argsort(scores, kind="stable")
        return order, scores[order]
    # + 0.0 turns -0.0 into 0.0: they compare equal, so they must share a key.
    key = np.add(scores, 0.0).view(np.uint64)
    # Negative floats: flip every bit; others: set the sign bit. Unsigned order = float order.
    negative = key >= _SIGN
    np.invert(key, out=key, where=negative)
    np.bitwise_or(key, _SIGN, out=key, where=~negative)
    del negative
    low = key.min()
    shift = np.uint64(max(0, int(key.max() - low).bit_length() - (64 - index_bits)))
    key -= low
    key >>= shift
    key <<= np.uint64(index_bits)
    key |= (np.arange(n, dtype=np.int64) if positions is None else positions).view(np.uint64)
    key.sort()
    prefix = np.empty(n, np.uint64) if scratch is None else scratch.view(np.uint64)
    np.right_shift(key, np.uint64(index_bits), out=prefix)
    order = np.bitwise_and(key, np.uint64((1 << index_bits) - 1), out=key).view(np.int64)
    ordered = np.take(scores, order)
    wrong = np.flatnonzero(ordered[1:] < ordered[:-1])
    if wrong.size and not _resort_collisions(prefix, order, ordered, scores, wrong):
        order = np.argsort(scores, kind="stable")
        ordered = scores[order]
    return order, ordered


def _resort_collisions(
    prefix: AnyArray, order: IntArray, ordered: FloatArray, scores: FloatArray, wrong: IntArray
) -> bool:
    """Exactly re-sort (in place) the groups of equal high bits that hold an inversion.

    False (nothing changed) when those groups are too large to be worth it.
    """
    value = prefix[wrong]
    lo = np.unique(np.searchsorted(prefix, value, side="left"))
    hi = np.searchsorted(prefix, prefix[lo], side="right")
    sizes = hi - lo
    if int(sizes.sum()) > prefix.shape[0] // 8:
        return False
    positions = np.repeat(lo - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
    group = np.repeat(np.arange(lo.shape[0]), sizes)
    rows = order[positions]
    perm = np.lexsort((rows, scores[rows], group))
    order[positions] = rows[perm]
    ordered[positions] = scores[rows[perm]]
    return True
