"""Paired DeLong from placements, in two passes over the partitions.

DeLong's structural components ("placements") depend on the whole benchmark: a positive's is the
share of its segment's negatives scored below it (ties half), a negative's the share of its
segment's positives scored above it. Pass 1 merges count tables (counts.py); pass 2 looks each
row up in the merged table and adds up the moments DeLong's variance needs.

Every placement is a fraction with a known denominator: a positive's is
(2 * negatives below + negatives tied) / (2 N), a negative's (2 * positives above + positives
tied) / (2 P). So pass 2 sums integer numerators, their squares and the two models'
cross-products exactly (exact.py); the variances are then exact rationals, rounded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluators.statistics.mergeable.counts import (
    CountTable,
    Offsets,
    grouped_order,
    negatives_below,
    positives_below,
)
from evaluators.statistics.mergeable.exact import (
    grouped_sum,
    grouped_wide_sum,
    wide_to_int,
)
from evaluators.statistics.resample_bins import bins_for

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]

# Numerators reach 2 * (rows of one class in a segment); they must stay below 2**31 so that a
# product of two fits below 2**62 (exact.py).
MAX_CLASS_ROWS = (1 << 30) - 1


@dataclass(frozen=True)
class ScoreIndex:
    """Every distinct score of one model over the whole benchmark (the merged overall table's)."""

    scores: FloatArray

    @classmethod
    def of(cls, overall: CountTable) -> ScoreIndex:
        if overall.n_segments != 1:
            raise ValueError("the score index comes from the unsegmented table")
        return cls(overall.score)

    def ranks(self, score: FloatArray, order: IntArray | None = None) -> IntArray:
        """Each score's position in the index; a score the index lacks is an error.
        `order`: the rows by ascending score, when the caller has it already."""
        if order is None:
            order = np.argsort(score)
        # Sorted queries make searchsorted walk the index once instead of jumping around it.
        found = np.searchsorted(self.scores, score[order])
        inside = np.minimum(found, max(self.scores.shape[0] - 1, 0))
        if found.shape[0] and (
            self.scores.shape[0] == 0 or (self.scores[inside] != score[order]).any()
        ):
            raise ValueError("a score is missing from the merged table: tables of other rows?")
        out = np.empty(score.shape[0], dtype=np.int64)
        out[order] = found
        return out


@dataclass(frozen=True)
class PlacementTable:
    """A merged count table ready for pass 2: each entry's placement numerators.

    `key` is segment * len(index) + rank of the score in the model's ScoreIndex, ascending.
    """

    key: IntArray
    # int32: below 2**31 (MAX_CLASS_ROWS); every worker holds every table in pass 2.
    positive: AnyArray  # a positive's placement is positive / (2 * negatives of its segment)
    negative: AnyArray  # a negative's placement is negative / (2 * positives of its segment)
    width: int  # len(index)
    n_segments: int
    # For the resamples of rank metrics (histograms.py): each entry's quantile bin in its
    # segment (int16), and the bins per segment; None when no rank metric is resampled.
    bin: AnyArray | None = None
    bins: IntArray | None = None

    def numerators(self, entry: IntArray, label: IntArray) -> IntArray:
        """Rows' placement numerators from their entries, as int64 (their squares are summed)."""
        return np.where(label > 0, self.positive[entry], self.negative[entry]).astype(np.int64)


def placement_table(
    table: CountTable,
    index: ScoreIndex,
    *,
    bin_cap: int | None = None,
    offsets: Offsets | None = None,
) -> PlacementTable:
    """Numerators per entry of a merged table (overall or one segment column), or of its slice
    of one score range given the `offsets` of the others (ranges.py); with `bin_cap`, also each
    entry's resampling bin (as the local engine: `bins_for(rows, cap)` quantile bins of the
    segment's own scores, a tie run in the bin of its first row)."""
    width = int(index.scores.shape[0])
    ranks = np.searchsorted(index.scores, table.score)
    if table.score.shape[0] and (
        width == 0 or (index.scores[np.minimum(ranks, width - 1)] != table.score).any()
    ):
        raise ValueError("the table holds scores that the index lacks: tables of other rows?")
    if offsets is None:
        offsets = Offsets.whole(table)
    positives, negatives = offsets.positives, offsets.negatives
    if max(int(positives.max(initial=0)), int(negatives.max(initial=0))) > MAX_CLASS_ROWS:
        raise ValueError("a segment holds more rows of one class than exact sums allow (2**30)")
    seg = table.segment
    pos_below = offsets.pos_below[seg] + positives_below(table)
    neg_below = offsets.neg_below[seg] + negatives_below(table)
    above = positives[seg] - pos_below - table.pos
    entry_bin, bins = None, None
    if bin_cap is not None:
        rows = positives + negatives
        bins = bins_for(rows, cap=bin_cap)
        entry_bin = (pos_below + neg_below) * bins[seg] // np.maximum(rows[seg], 1)
        entry_bin = entry_bin.astype(np.int16)  # bins_for caps at 1024
    return PlacementTable(
        key=table.segment.astype(np.int64) * width + ranks,
        positive=(2 * neg_below + table.neg).astype(np.int32),
        negative=(2 * above + table.pos).astype(np.int32),
        width=width,
        n_segments=table.n_segments,
        bin=entry_bin,
        bins=bins,
    )


def row_entries(
    table: PlacementTable, *, ranks: IntArray, codes: IntArray | None, order: IntArray | None
) -> IntArray:
    """Each row's entry (row order) in a merged table of all the rows."""
    key = ranks if codes is None else codes * table.width + ranks
    if order is None:
        order = np.argsort(key)
    else:
        order = grouped_order(ranks, codes, table.n_segments, order)
    wanted = key[order]
    entry = np.searchsorted(table.key, wanted)
    if wanted.shape[0] and (
        table.key.shape[0] == 0
        or (table.key[np.minimum(entry, table.key.shape[0] - 1)] != wanted).any()
    ):
        raise ValueError("a row is missing from the merged table: tables of other rows?")
    out = np.empty(key.shape[0], dtype=np.int64)
    out[order] = entry
    return out


@dataclass(frozen=True)
class DelongMoments:
    """Per segment and class (0 negatives, 1 positives): rows, numerator sums per model
    (candidate, baseline) and exact wide sums of squares and cross-products."""

    count: IntArray  # (k, 2)
    sums: IntArray  # (k, 2, 2): [segment, class, model]
    products: IntArray  # (k, 2, 3, 2): [segment, class, cc|bb|cb, limb]

    def __add__(self, other: DelongMoments) -> DelongMoments:
        return DelongMoments(
            self.count + other.count, self.sums + other.sums, self.products + other.products
        )


def delong_moments(
    *,
    label: IntArray,
    codes: IntArray | None,
    n_segments: int,
    candidate: IntArray,
    baseline: IntArray,
) -> DelongMoments:
    """One partition's moments from both models' row placement numerators
    (`PlacementTable.numerators`)."""
    cell = label if codes is None else codes * 2 + label
    cells = 2 * n_segments
    count = np.bincount(cell, minlength=cells).astype(np.int64)
    sums = np.stack([grouped_sum(cell, candidate, cells), grouped_sum(cell, baseline, cells)], 1)
    products = np.stack(
        [
            grouped_wide_sum(cell, candidate * candidate, cells),
            grouped_wide_sum(cell, baseline * baseline, cells),
            grouped_wide_sum(cell, candidate * baseline, cells),
        ],
        axis=1,
    )
    return DelongMoments(
        count=count.reshape(n_segments, 2),
        sums=sums.reshape(n_segments, 2, 2),
        products=products.reshape(n_segments, 2, 3, 2),
    )


@dataclass(frozen=True)
class DelongResult:
    """Per segment: both AUCs, their DeLong SEs, the paired covariance and the SE of the
    difference (candidate - baseline). NaN exactly where `defined` is False (fewer than two
    rows of a class)."""

    auc_candidate: FloatArray
    auc_baseline: FloatArray
    se_candidate: FloatArray
    se_baseline: FloatArray
    covariance: FloatArray
    se_delta: FloatArray
    defined: npt.NDArray[np.bool_]


def _class_variance(m: int, scale: int, q: Any, s1: Any, s2: Any) -> Fraction:
    """Sample covariance of two numerator columns over m rows, divided by m and by scale**2:
    (m * Σab - Σa Σb) / (m (m-1) m scale²) — this class's share of Var(AUC)."""
    return Fraction(m * q - s1 * s2, m * (m - 1) * m * scale * scale)


def delong(moments: DelongMoments) -> DelongResult:
    """DeLong variances and covariance per segment, from exact moments."""
    k = moments.count.shape[0]
    count = moments.count
    products = wide_to_int(moments.products)  # (k, 2, 3) Python ints
    out = {name: np.full(k, np.nan) for name in ("ac", "ab", "vc", "vb", "cov", "vd")}
    defined = np.asarray((count >= 2).all(axis=1), dtype=bool)
    for s in range(k):
        neg, pos = int(count[s, 0]), int(count[s, 1])
        if pos == 0 or neg == 0:
            continue
        sums = [[int(v) for v in row] for row in moments.sums[s]]
        # Mean positive placement = AUC: Σ numerators / (P * 2N).
        out["ac"][s] = float(Fraction(sums[1][0], pos * 2 * neg))
        out["ab"][s] = float(Fraction(sums[1][1], pos * 2 * neg))
        if not defined[s]:
            continue
        parts: dict[str, Fraction] = {"vc": Fraction(0), "vb": Fraction(0), "cov": Fraction(0)}
        for cls, m, scale in ((1, pos, neg), (0, neg, pos)):
            sc, sb = sums[cls]
            qcc, qbb, qcb = (int(v) for v in products[s, cls])
            parts["vc"] += _class_variance(m, 2 * scale, qcc, sc, sc)
            parts["vb"] += _class_variance(m, 2 * scale, qbb, sb, sb)
            parts["cov"] += _class_variance(m, 2 * scale, qcb, sc, sb)
        out["vc"][s], out["vb"][s] = float(parts["vc"]), float(parts["vb"])
        out["cov"][s] = float(parts["cov"])
        out["vd"][s] = float(parts["vc"] + parts["vb"] - 2 * parts["cov"])
    return DelongResult(
        auc_candidate=out["ac"],
        auc_baseline=out["ab"],
        se_candidate=np.sqrt(out["vc"]),
        se_baseline=np.sqrt(out["vb"]),
        covariance=out["cov"],
        se_delta=np.sqrt(out["vd"]),
        defined=defined,
    )
