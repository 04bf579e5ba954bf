"""Score ranges: the merged tables in slices, so no task of pass 2 holds every table whole.

A merged count table holds about one entry per distinct (segment, score): at 10M rows that is
~1 GB for both models and four segment columns, and every partition's pass 2 needed all of it.
Cut each model's score line into ranges instead; a slice of a merged table (its entries in one
range) still gives exact placements once it knows, per segment, the positives and negatives
scored below its range (`Offsets`). Pass 2 then looks a partition's rows up range by range.

The cuts come from a sketch of the scores (rows per coarse score bin) that merges by addition,
so they, and every result, are the same whatever the partitioning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluators.statistics.mergeable.counts import (
    ClassCounts,
    CountTable,
    FloatArray,
    IntArray,
    Offsets,
    RankCounts,
    class_counts,
    join_ranges,
    merge_tables,
    rank_counts,
)
from evaluators.statistics.mergeable.exact import summed_by_key

# A coarse bin keeps the sign, the exponent and 8 bits of mantissa: 256 bins an octave.
_DROPPED_BITS = 44


def score_bins(score: FloatArray) -> IntArray:
    """Each finite float64 score's coarse bin, in score order (-0.0 must be read as 0.0)."""
    bits = np.ascontiguousarray(score, dtype=np.float64).view(np.int64)
    # Negative floats order backwards as integers: flip all but the sign bit.
    ordered = np.where(bits < 0, bits ^ np.int64(0x7FFF_FFFF_FFFF_FFFF), bits)
    return ordered >> _DROPPED_BITS


@dataclass(frozen=True)
class ScoreSketch:
    """Rows per coarse score bin of one model (the filled bins only, ascending)."""

    bins: IntArray
    counts: IntArray

    def __add__(self, other: ScoreSketch) -> ScoreSketch:
        return ScoreSketch(
            *summed_by_key(
                np.concatenate([self.bins, other.bins]),
                np.concatenate([self.counts, other.counts]),
            )
        )


def score_sketch(sorted_score: FloatArray) -> ScoreSketch:
    """The sketch of ascending scores (pass 1 sorts them anyway)."""
    bins = score_bins(sorted_score)
    if bins.shape[0] == 0:
        return ScoreSketch(bins, np.zeros(0, dtype=np.int64))
    starts = np.flatnonzero(np.concatenate([[True], bins[1:] != bins[:-1]]))
    counts = np.diff(np.append(starts, bins.shape[0]))
    return ScoreSketch(bins[starts], counts.astype(np.int64))


def range_cuts(sketch: ScoreSketch, ranges: int) -> IntArray:
    """`ranges - 1` ascending bins where ranges 1.. start, about equal rows each. One bin is
    never split, so with few filled bins some ranges are empty (equal cuts)."""
    bins = sketch.bins
    if ranges <= 1:
        return np.zeros(0, dtype=np.int64)
    if bins.shape[0] < 2:  # every score in range 0
        return np.full(ranges - 1, np.iinfo(np.int64).max, dtype=np.int64)
    below = np.cumsum(sketch.counts) - sketch.counts  # rows in lower bins
    targets = (np.arange(1, ranges) * int(sketch.counts.sum())) // ranges
    first = np.searchsorted(below, targets, side="left")  # first bin with `target` rows below
    return np.asarray(bins[np.clip(first, 1, bins.shape[0] - 1)], dtype=np.int64)


def range_of(score: FloatArray, cuts: IntArray) -> IntArray:
    """Each score's range, 0..len(cuts)."""
    if cuts.shape[0] == 0:
        return np.zeros(score.shape[0], dtype=np.int64)
    return np.searchsorted(cuts, score_bins(score), side="right").astype(np.int64)


def split_table(table: CountTable, cuts: IntArray) -> list[CountTable]:
    """A table's entries by range (each slice sorted as the table is)."""
    if cuts.shape[0] == 0:
        return [table]
    which = range_of(table.score, cuts)
    return [_take(table, np.flatnonzero(which == r)) for r in range(cuts.shape[0] + 1)]


def _take(table: CountTable, rows: IntArray) -> CountTable:
    return CountTable(
        table.segment[rows], table.score[rows], table.pos[rows], table.neg[rows], table.n_segments
    )


def offsets_of(slices: list[ClassCounts]) -> list[Offsets]:
    """Each range's offsets from every range's counts (ranges in order)."""
    pos = np.stack([s.pos for s in slices])
    neg = np.stack([s.neg for s in slices])
    pos_below = np.cumsum(pos, axis=0) - pos
    neg_below = np.cumsum(neg, axis=0) - neg
    positives, negatives = pos.sum(axis=0), neg.sum(axis=0)
    return [Offsets(pos_below[r], neg_below[r], positives, negatives) for r in range(len(slices))]


def cuts_of(sketches: tuple[ScoreSketch, ...], ranges: int) -> tuple[IntArray, IntArray]:
    """Each model's `ranges - 1` cuts, from the merged pass 1's score sketches."""
    return (range_cuts(sketches[0], ranges), range_cuts(sketches[1], ranges))


Key = tuple[str, int]  # (segment column, model)
Tables = dict[Key, CountTable]


def split_tables(tables: Tables, cuts: tuple[IntArray, IntArray]) -> list[Tables]:
    """Tables (one partition's, or merged) as slices by score range: one dict per range."""
    sliced = {key: split_table(table, cuts[key[1]]) for key, table in tables.items()}
    ranges = len(cuts[0]) + 1
    return [{key: slices[r] for key, slices in sliced.items()} for r in range(ranges)]


def merge_slices(parts: list[Tables]) -> Tables:
    """One range's slices of several partitions, merged table by table."""
    return {key: merge_tables(p[key] for p in parts) for key in parts[0]}


def slice_counts(tables: Tables) -> dict[Key, ClassCounts]:
    return {key: class_counts(table) for key, table in tables.items()}


def range_offsets(counts: list[dict[Key, ClassCounts]]) -> list[dict[Key, Offsets]]:
    """Each range's offsets per table, from every range's class counts (in range order)."""
    per_key = {key: offsets_of([c[key] for c in counts]) for key in counts[0]}
    return [{key: per_key[key][r] for key in per_key} for r in range(len(counts))]


def range_rank_counts(tables: Tables, offsets: dict[Key, Offsets]) -> dict[Key, RankCounts]:
    """One range's shares of the exact AUC counts (`join_rank_counts` adds them up)."""
    return {key: rank_counts(table, offsets[key]) for key, table in tables.items()}


def join_rank_counts(shares: list[dict[Key, RankCounts]]) -> dict[Key, RankCounts]:
    return {key: join_ranges([s[key] for s in shares]) for key in shares[0]}


__all__ = [
    "Key",
    "ScoreSketch",
    "Tables",
    "cuts_of",
    "join_rank_counts",
    "merge_slices",
    "offsets_of",
    "range_cuts",
    "range_of",
    "range_offsets",
    "range_rank_counts",
    "score_bins",
    "score_sketch",
    "slice_counts",
    "split_table",
    "split_tables",
]
