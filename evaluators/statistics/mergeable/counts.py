"""Count tables: positives and negatives per distinct (segment, score) of one model.

A partition's table is exact and small to merge: merging adds the counts of equal keys. The
merged table holds every distinct score of the whole benchmark with its label counts, which is
all an exact ROC AUC needs (ties count one half), per segment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluators.metrics.ranking import Runs, average_precision_from_runs
from evaluators.statistics.codes import compact_codes, compact_to_fit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]


@dataclass(frozen=True)
class CountTable:
    """Label counts per distinct (segment, score), sorted by segment then score.

    An unsegmented table has `n_segments` 1 and every segment 0. Segment codes must mean the
    same value in every partition (the caller fixes the vocabulary).
    """

    segment: AnyArray  # compact (codes.compact_codes): widen before arithmetic
    score: FloatArray
    pos: AnyArray  # the smallest integer type that holds every count (`_compact_counts`)
    neg: AnyArray
    n_segments: int

    def __add__(self, other: CountTable) -> CountTable:
        return merge_tables([self, other])


def _segment_sum(segment: IntArray, values: IntArray, n_segments: int) -> IntArray:
    out = np.zeros(n_segments, dtype=np.int64)
    np.add.at(out, segment, values)
    return out


def _small(codes: IntArray, n_segments: int) -> AnyArray:
    """Codes as int16 when they fit: numpy's stable sort of 16-bit integers is a radix sort."""
    return codes.astype(np.int16) if n_segments <= 2**15 else codes


def grouped_order(
    score: AnyArray, codes: IntArray | None, n_segments: int, order: IntArray | None = None
) -> IntArray:
    """Row order by (segment, score). Order within tied scores is irrelevant to every count,
    so the scores use numpy's fast unstable sort and only the segment pass is stable.
    `order` (rows by ascending score) saves the score sort when several columns share it."""
    if order is None:
        order = np.argsort(score).astype(np.int64, copy=False)
    if codes is None or n_segments == 1:
        return order
    by_segment = np.argsort(_small(codes, n_segments)[order], kind="stable")
    return order[by_segment]


def _compact_counts(counts: AnyArray) -> AnyArray:
    """Label counts in the smallest signed integer type that holds them: a partition's table
    (counts mostly 0 or 1) is 11 bytes an entry instead of 32, a merged 10M-entry one 18, on
    the workers that hold and merge them. Arithmetic on them must widen first."""
    return compact_to_fit(counts)


def _table(
    segment: AnyArray, score: FloatArray, pos: AnyArray, neg: AnyArray, n_segments: int
) -> CountTable:
    return CountTable(
        compact_codes(segment, n_segments),
        score,
        _compact_counts(pos),
        _compact_counts(neg),
        n_segments,
    )


def _collapse(
    segment: AnyArray, score: FloatArray, pos: AnyArray, neg: AnyArray, n_segments: int
) -> CountTable:
    """Sum the counts of equal adjacent keys in (segment, score)-sorted arrays."""
    n = score.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _table(empty, np.zeros(0), empty, empty.copy(), n_segments)
    boundary = np.ones(n, dtype=bool)
    boundary[1:] = (score[1:] != score[:-1]) | (segment[1:] != segment[:-1])
    starts = np.flatnonzero(boundary)
    if starts.shape[0] == n:
        return _table(segment, score, pos, neg, n_segments)
    return _table(
        segment[starts],
        score[starts],
        np.add.reduceat(pos, starts, dtype=np.int64),
        np.add.reduceat(neg, starts, dtype=np.int64),
        n_segments,
    )


def _checked_codes(codes: AnyArray | None, n_rows: int, n_segments: int) -> IntArray | None:
    if codes is None:
        if n_segments != 1:
            raise ValueError("segment codes are needed for more than one segment")
        return None
    out = np.asarray(codes, dtype=np.int64)
    if out.shape != (n_rows,):
        raise ValueError("segment codes must have one entry per row")
    if n_rows and (out.min() < 0 or out.max() >= n_segments):
        raise ValueError(f"segment codes must lie in 0..{n_segments - 1}")
    return out


def checked_rows(score: AnyArray, label: AnyArray) -> tuple[FloatArray, IntArray]:
    """Finite float64 scores (-0.0 read as 0.0) and 0/1 int64 labels of equal length."""
    values = np.asarray(score, dtype=np.float64) + 0.0
    labels = np.asarray(label)
    if values.ndim != 1 or labels.shape != values.shape:
        raise ValueError("scores and labels must be 1-d arrays of equal length")
    if not np.isfinite(values).all():
        raise ValueError("scores contain NaN or infinite values")
    as_int = labels.astype(np.int64)
    if not np.array_equal(as_int, labels) or (
        as_int.size and (as_int.min() < 0 or as_int.max() > 1)
    ):
        raise ValueError("labels must be 0 or 1")
    return values, as_int


def count_table(
    *,
    score: AnyArray,
    label: AnyArray,
    codes: AnyArray | None = None,
    n_segments: int = 1,
    order: IntArray | None = None,
) -> CountTable:
    """One partition's table for one model (and one segment column, if `codes` is given).
    `order`: the rows by ascending score, when the caller has it already."""
    values, labels = checked_rows(score, label)
    checked = _checked_codes(codes, values.shape[0], n_segments)
    order = grouped_order(values, checked, n_segments, order)
    segment = np.zeros(order.shape[0], dtype=np.int64) if checked is None else checked[order]
    pos = labels[order]
    return _collapse(segment, values[order], pos, 1 - pos, n_segments)


def merge_tables(tables: Iterable[CountTable]) -> CountTable:
    """The table of all the tables' rows: counts of equal (segment, score) keys add up."""
    parts = list(tables)
    if not parts:
        raise ValueError("no tables to merge")
    n_segments = parts[0].n_segments
    if any(part.n_segments != n_segments for part in parts):
        raise ValueError("tables of different segment columns cannot be merged")
    if len(parts) == 1:
        return parts[0]
    segment = np.concatenate([part.segment for part in parts])
    score = np.concatenate([part.score for part in parts])
    order = grouped_order(score, segment, n_segments)
    return _collapse(
        segment[order],
        score[order],
        np.concatenate([part.pos for part in parts])[order],
        np.concatenate([part.neg for part in parts])[order],
        n_segments,
    )


def negatives_below(table: CountTable) -> IntArray:
    """Per entry, the negatives of its segment with a lower score."""
    return _before(table.segment, table.neg)


def positives_below(table: CountTable) -> IntArray:
    """Per entry, the positives of its segment with a lower score."""
    return _before(table.segment, table.pos)


def _before(segment: IntArray, counts: IntArray) -> IntArray:
    running = np.cumsum(counts) - counts
    if running.shape[0] == 0:
        return running
    first = np.ones(segment.shape[0], dtype=bool)
    first[1:] = segment[1:] != segment[:-1]
    starts = np.flatnonzero(first)
    return running - np.repeat(running[starts], np.diff(np.append(starts, segment.shape[0])))


@dataclass(frozen=True)
class ClassCounts:
    """Per segment: the positives and negatives of a table (or a slice of one)."""

    pos: IntArray
    neg: IntArray

    def __add__(self, other: ClassCounts) -> ClassCounts:
        return ClassCounts(self.pos + other.pos, self.neg + other.neg)


def class_counts(table: CountTable) -> ClassCounts:
    k = table.n_segments
    return ClassCounts(
        _segment_sum(table.segment, table.pos, k), _segment_sum(table.segment, table.neg, k)
    )


@dataclass(frozen=True)
class Offsets:
    """What a slice needs of the other ranges, per segment: the positives and negatives scored
    below its range, and the whole table's."""

    pos_below: IntArray
    neg_below: IntArray
    positives: IntArray
    negatives: IntArray

    @classmethod
    def whole(cls, table: CountTable) -> Offsets:
        """A whole table's: nothing below it."""
        counts = class_counts(table)
        zero = np.zeros_like(counts.pos)
        return cls(zero, zero.copy(), counts.pos, counts.neg)


@dataclass(frozen=True)
class RankCounts:
    """Exact ROC AUC per segment as integers: AUC = concordant2 / (2 * positives * negatives)."""

    positives: IntArray
    negatives: IntArray
    concordant2: IntArray  # twice the (positive, negative) pairs ranked right, ties counting 1
    average_precision: FloatArray  # per segment, from the same table (NaN with no positives)

    @property
    def defined(self) -> npt.NDArray[np.bool_]:
        """AUC exists only where a segment has both classes."""
        return (self.positives > 0) & (self.negatives > 0)

    @property
    def auc(self) -> FloatArray:
        """AUC per segment; NaN exactly where `defined` is False."""
        pairs = 2.0 * self.positives.astype(np.float64) * self.negatives.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = self.concordant2.astype(np.float64) / pairs
        return np.asarray(np.where(self.defined, value, np.nan), dtype=np.float64)

    def auc_of(self, segment: int = 0) -> float | None:
        """One segment's AUC, or None when it is undefined (a class is missing)."""
        if not self.defined[segment]:
            return None
        return float(self.auc[segment])


def rank_counts(table: CountTable, offsets: Offsets | None = None) -> RankCounts:
    """Exact AUC counts of a (merged) table, and its average precision: a table's entries are
    the tie runs of its rows in (segment, score) order, so the local engine's own formula
    (`average_precision_from_runs`) applies to them as they are. A slice of a table (one score
    range, `offsets` from the others) gives its share: `join_ranges` adds the shares up."""
    k = table.n_segments
    if offsets is None:
        offsets = Offsets.whole(table)
    neg_below = offsets.neg_below[table.segment] + negatives_below(table)
    pos_below = offsets.pos_below[table.segment] + positives_below(table)
    concordant2 = _segment_sum(table.segment, table.pos * (2 * neg_below + table.neg), k)
    lengths = table.pos.astype(np.int64) + table.neg  # int32 each; their sum may not be
    runs = Runs(
        segment=table.segment,
        starts=np.cumsum(lengths) - lengths,  # within the slice: average precision ignores it
        lengths=lengths,
        pos=table.pos.astype(np.float64),
        neg=table.neg.astype(np.float64),
        pos_before=pos_below.astype(np.float64),
        neg_before=neg_below.astype(np.float64),
        positives=offsets.positives.astype(np.float64),
        negatives=offsets.negatives.astype(np.float64),
    )
    return RankCounts(
        positives=offsets.positives,
        negatives=offsets.negatives,
        concordant2=concordant2,
        average_precision=average_precision_from_runs(runs, n_segments=k),
    )


def join_ranges(shares: list[RankCounts]) -> RankCounts:
    """The whole table's counts from its ranges' shares (in range order)."""
    head = shares[0]
    return RankCounts(
        positives=head.positives,
        negatives=head.negatives,
        concordant2=np.sum([s.concordant2 for s in shares], axis=0, dtype=np.int64),
        average_precision=np.sum([s.average_precision for s in shares], axis=0),
    )
