"""One partition's part of a paired evaluation, in two passes, and the merge of the parts.

Pass 1 (`first_pass`) per partition: count tables per model and segment column, loss sums,
calibration bins, bootstrap replicate sums, score sketches. Merge the parts by addition,
`prepare` them once, then pass 2 (`second_pass`) per partition: DeLong moments per segment
column. Merge, `finish`. A distributed engine runs the passes on its workers and the merges
wherever it likes: every merge is an addition, so the result does not depend on partitioning
or order. For large benchmarks it cuts the tables into score ranges (ranges.py) and prepares
and looks up each range on its own (`prepare_range`, `by_range`, `look_up`, `second_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import add
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluators.metrics.sums import binary_confusion
from evaluators.statistics.codes import compact_codes, compact_to_fit
from evaluators.statistics.intervals import bootstrap_se
from evaluators.statistics.mergeable.bootstrap import BootstrapSums, HashedPoisson, bootstrap_sums
from evaluators.statistics.mergeable.counts import (
    CountTable,
    Offsets,
    RankCounts,
    checked_rows,
    count_table,
    merge_tables,
    rank_counts,
)
from evaluators.statistics.mergeable.histograms import (
    HistogramCounts,
    histogram_counts,
    resampled_deltas,
)
from evaluators.statistics.mergeable.placements import (
    DelongMoments,
    DelongResult,
    PlacementTable,
    ScoreIndex,
    delong,
    delong_moments,
    placement_table,
    row_entries,
)
from evaluators.statistics.mergeable.ranges import (
    ScoreSketch,
    range_of,
    score_sketch,
)
from evaluators.statistics.mergeable.sums import (
    CalibrationBins,
    LossSums,
    StatSums,
    calibration_bins,
    fixed_terms,
    loss_sums,
    stat_sums,
)
from evaluators.statistics.resample_bins import OVERALL_BINS, SEGMENT_BINS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]

OVERALL = ""  # the column name of "all rows, one segment"


@dataclass(frozen=True)
class Layout:
    """What every partition computes: segment columns (name -> number of codes), calibration
    bins, the bootstrap of the loss and confusion sums (None: no bootstrap), and the decision
    threshold of the confusion counts (None: no confusion metric asked)."""

    columns: dict[str, int] = field(default_factory=dict)
    calibration_bins: int = 10
    bootstrap: HashedPoisson | None = None
    threshold: float | None = None
    # Rank metrics resampled in pass 2 from binned histograms (histograms.KINDS): "auc" for
    # ROC AUC with statistics.method bootstrap, "ap" for average precision.
    rank_resamples: tuple[str, ...] = ()

    def segments(self) -> dict[str, int]:
        return {OVERALL: 1, **self.columns}

    def bin_cap(self, column: str) -> int | None:
        """The resampling bins' cap for a column's merged tables; None: no bins needed."""
        if not self.rank_resamples:
            return None
        return OVERALL_BINS if column == OVERALL else SEGMENT_BINS

    @property
    def groups(self) -> int:
        """The bootstrap's hashed row groups (1: no grouped bootstrap)."""
        design = self.bootstrap
        return 1 if design is None or design.groups is None else design.groups

    def row_groups(self, row_id: IntArray) -> IntArray | None:
        """Each row's hashed bootstrap group (hashed once per partition and pass, shared by
        every sum that needs it); None without a grouped bootstrap."""
        design = self.bootstrap
        if design is None or design.groups is None:
            return None
        return design.row_group(row_id)


@dataclass(frozen=True)
class Rows:
    """One partition: global row ids, 0/1 labels, both models' probabilities, segment codes.
    (Multiclass: class indices and (n, classes) probabilities; regression: targets and
    predictions.)"""

    row_id: IntArray
    label: IntArray
    candidate: FloatArray
    baseline: FloatArray
    codes: dict[str, IntArray] = field(default_factory=dict)

    def codes_of(self, column: str) -> IntArray | None:
        return None if column == OVERALL else self.codes[column]

    def one_vs_rest(self, problem: int) -> Rows:
        """Multiclass rows as the binary problem "class `problem` or not" (as the local
        engine's one-vs-rest ROC AUC)."""
        return Rows(
            row_id=self.row_id,
            label=(self.label == problem).astype(np.int64),
            candidate=np.ascontiguousarray(self.candidate[:, problem]),
            baseline=np.ascontiguousarray(self.baseline[:, problem]),
            codes=self.codes,
        )


@dataclass(frozen=True)
class FirstPass:
    """One partition's pass-1 results (or several partitions', added up)."""

    tables: dict[tuple[str, int], CountTable]  # (column, model 0 candidate / 1 baseline)
    losses: dict[str, LossSums]
    calibration: CalibrationBins
    bootstrap: dict[str, BootstrapSums]
    confusion: dict[str, StatSums] = field(default_factory=dict)
    sketches: tuple[ScoreSketch, ...] = ()  # per model: where the score ranges are cut

    def __add__(self, other: FirstPass) -> FirstPass:
        return merge_first([self, other])


def merge_first(parts: list[FirstPass]) -> FirstPass:
    """Pass-1 parts added up; tables merge all at once (pairwise merges re-sort the growing
    table once per part)."""
    head = parts[0]
    return FirstPass(
        tables={key: merge_tables(p.tables[key] for p in parts) for key in head.tables},
        losses={key: reduce(add, (p.losses[key] for p in parts)) for key in head.losses},
        calibration=reduce(add, (p.calibration for p in parts)),
        bootstrap={key: reduce(add, (p.bootstrap[key] for p in parts)) for key in head.bootstrap},
        confusion={key: reduce(add, (p.confusion[key] for p in parts)) for key in head.confusion},
        sketches=tuple(
            reduce(add, (p.sketches[m] for p in parts)) for m in range(len(head.sketches))
        ),
    )


def first_pass(rows: Rows, layout: Layout) -> FirstPass:
    """Pass 1 on one partition."""
    cand, label = checked_rows(rows.candidate, rows.label)
    base, _ = checked_rows(rows.baseline, rows.label)
    tables, losses, boot, confusion = {}, {}, {}, {}
    fixed = fixed_terms(label=label, candidate=cand, baseline=base)  # shared by every column
    group = layout.row_groups(rows.row_id)
    # One score sort per model, shared by every segment column.
    orders = (np.argsort(cand), np.argsort(base))
    for column, k in layout.segments().items():
        codes = rows.codes_of(column)
        for model, scores in enumerate((cand, base)):
            tables[(column, model)] = count_table(
                score=scores, label=label, codes=codes, n_segments=k, order=orders[model]
            )
        losses[column] = loss_sums(
            label=label, candidate=cand, baseline=base, codes=codes, n_segments=k, fixed=fixed
        )
        if layout.bootstrap is not None:
            boot[column] = bootstrap_sums(
                layout.bootstrap,
                row_id=rows.row_id,
                fixed=fixed,
                codes=codes,
                n_segments=k,
                group=group,
            )
        if layout.threshold is not None:
            confusion[column] = stat_sums(
                binary_confusion,
                label=label,
                candidate=cand,
                baseline=base,
                threshold=layout.threshold,
                codes=codes,
                n_segments=k,
                group=group,
                groups=layout.groups,
            )
    return FirstPass(
        tables=tables,
        losses=losses,
        calibration=calibration_bins(
            label=label, candidate=cand, baseline=base, bins=layout.calibration_bins
        ),
        bootstrap=boot,
        confusion=confusion,
        sketches=(score_sketch(cand[orders[0]]), score_sketch(base[orders[1]])),
    )


_NO_CUTS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Prepared:
    """One score range of the merged pass-1 tables, as pass 2 needs them: each model's score
    index and placement tables for the range, and the cuts that say which rows are in it (no
    cuts: one range, the whole tables)."""

    index: tuple[ScoreIndex, ScoreIndex]
    tables: dict[tuple[str, int], PlacementTable]
    cuts: tuple[IntArray, IntArray] = (_NO_CUTS, _NO_CUTS)
    range: int = 0


def prepare(merged: FirstPass, layout: Layout) -> Prepared:
    """The whole merged tables as one range."""
    return prepare_range(merged.tables, layout)


def prepare_range(
    tables: dict[tuple[str, int], CountTable],
    layout: Layout,
    *,
    offsets: dict[tuple[str, int], Offsets] | None = None,
    cuts: tuple[IntArray, IntArray] = (_NO_CUTS, _NO_CUTS),
    range_: int = 0,
) -> Prepared:
    """The merged tables' slices of one score range (ranges.split_table), with the other
    ranges' `offsets`; without them, whole tables."""
    index = (ScoreIndex.of(tables[(OVERALL, 0)]), ScoreIndex.of(tables[(OVERALL, 1)]))
    return Prepared(
        index=index,
        tables={
            key: placement_table(
                table,
                index[key[1]],
                bin_cap=layout.bin_cap(key[0]),
                offsets=None if offsets is None else offsets[key],
            )
            for key, table in tables.items()
        },
        cuts=cuts,
        range=range_,
    )


@dataclass(frozen=True)
class Lookup:
    """One score range's part of pass 2 on one partition: per model, the rows (positions)
    scored in the range and, per (segment column, model), their placement numerators and
    resampling bins."""

    range: int
    rows: tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]
    numerators: dict[tuple[str, int], npt.NDArray[np.int32]]
    bins: dict[tuple[str, int], AnyArray]  # int16; empty without rank resamples
    widths: dict[tuple[str, int], int]  # the widest segment's bins


@dataclass(frozen=True)
class InRange:
    """One model's rows of a partition scored in one range: their positions in the
    partition, scores, labels and segment codes (labels and codes compact while they wait
    for their range: widen before arithmetic)."""

    rows: npt.NDArray[np.int32]
    score: FloatArray
    label: AnyArray
    codes: dict[str, AnyArray]


def by_range(rows: Rows, cuts: tuple[IntArray, IntArray]) -> list[tuple[InRange, InRange]]:
    """A partition's rows split by each model's score range (one sort per model), so that a
    range's lookup touches only its own rows."""
    ranges = len(cuts[0]) + 1
    checked = [checked_rows(raw, rows.label) for raw in (rows.candidate, rows.baseline)]
    label = compact_codes(checked[0][1], 2)
    codes = {column: compact_to_fit(np.asarray(c)) for column, c in rows.codes.items()}
    split: list[list[InRange]] = [[] for _ in range(ranges)]
    for m, (score, _) in enumerate(checked):
        which = range_of(score, cuts[m])
        order = np.argsort(which, kind="stable").astype(np.int32)
        bounds = np.searchsorted(which[order], np.arange(ranges + 1))
        for r in range(ranges):
            inside = order[bounds[r] : bounds[r + 1]]
            split[r].append(
                InRange(
                    inside,
                    score[inside],
                    label[inside],
                    {column: c[inside] for column, c in codes.items()},
                )
            )
    return [(pair[0], pair[1]) for pair in split]


def look_up(part: tuple[InRange, InRange], prepared: Prepared, layout: Layout) -> Lookup:
    """Each model's rows in the prepared range (`by_range`), looked up in its tables."""
    numerators, bins, widths = {}, {}, {}
    for m, rows in enumerate(part):
        order = np.argsort(rows.score)
        ranks = prepared.index[m].ranks(rows.score, order)
        for column in layout.segments():
            codes = None if column == OVERALL else rows.codes[column].astype(np.int64)
            table = prepared.tables[(column, m)]
            entry = row_entries(table, ranks=ranks, codes=codes, order=order)
            numerators[(column, m)] = table.numerators(entry, rows.label).astype(np.int32)
            if table.bin is not None and table.bins is not None:
                bins[(column, m)] = table.bin[entry]
                widths[(column, m)] = int(table.bins.max(initial=1))
    return Lookup(prepared.range, (part[0].rows, part[1].rows), numerators, bins, widths)


@dataclass(frozen=True)
class SecondPass:
    moments: dict[str, DelongMoments]  # per segment column
    histograms: dict[tuple[str, int], HistogramCounts] = field(default_factory=dict)

    def __add__(self, other: SecondPass) -> SecondPass:
        return SecondPass(
            {key: m + other.moments[key] for key, m in self.moments.items()},
            {key: h + other.histograms[key] for key, h in self.histograms.items()},
        )


def _gathered(n: int, parts: list[tuple[AnyArray, AnyArray]], dtype: Any) -> AnyArray:
    out = np.empty(n, dtype=dtype)
    for where, values in parts:
        out[where] = values
    return out


def second_of(rows: Rows, lookups: list[Lookup], layout: Layout) -> SecondPass:
    """Pass 2 on one partition from its lookups in every score range (in range order): the
    DeLong moments and (if asked) the rank histograms per segment column."""
    _, label = checked_rows(rows.candidate, rows.label)
    n = label.shape[0]
    if [lk.range for lk in lookups] != list(range(len(lookups))) or any(
        sum(lk.rows[m].shape[0] for lk in lookups) != n for m in (0, 1)
    ):
        raise ValueError("the ranges' lookups do not cover the partition's rows once each")
    group = layout.row_groups(rows.row_id) if layout.rank_resamples else None
    moments, histograms = {}, {}
    for column, k in layout.segments().items():
        found = rows.codes_of(column)
        codes = None if found is None else np.asarray(found, dtype=np.int64)
        placed = [
            _gathered(n, [(lk.rows[m], lk.numerators[(column, m)]) for lk in lookups], np.int64)
            for m in (0, 1)
        ]
        moments[column] = delong_moments(
            label=label, codes=codes, n_segments=k, candidate=placed[0], baseline=placed[1]
        )
        if group is None:
            continue
        for m in (0, 1):
            row_bin = _gathered(n, [(lk.rows[m], lk.bins[(column, m)]) for lk in lookups], np.int16)
            histograms[(column, m)] = histogram_counts(
                row_bin=row_bin,
                width=lookups[0].widths[(column, m)],
                n_segments=k,
                label=label,
                codes=codes,
                group=group,
                groups=layout.groups,
            )
    return SecondPass(moments, histograms)


def second_pass(rows: Rows, prepared: Prepared, layout: Layout) -> SecondPass:
    """Pass 2 on one partition given the whole merged tables (one range)."""
    return second_of(rows, [look_up(by_range(rows, prepared.cuts)[0], prepared, layout)], layout)


@dataclass(frozen=True)
class ColumnResult:
    """Everything about one segment column (OVERALL: one segment)."""

    auc: tuple[RankCounts, RankCounts]  # exact AUC counts, candidate and baseline
    delong: DelongResult
    losses: LossSums
    loss_se: FloatArray | None  # (k, 2 terms) bootstrap SE of candidate - baseline
    confusion: StatSums | None = None  # per (segment, bootstrap group), at the threshold
    # kind -> (replicates, k) the replicates' candidate - baseline, from binned histograms
    rank_deltas: dict[str, FloatArray] = field(default_factory=dict)

    def rank_se(self, kind: str) -> FloatArray:
        """(k,) the bootstrap SE of a resampled rank metric's difference."""
        return bootstrap_se(self.rank_deltas[kind])


@dataclass(frozen=True)
class Evaluation:
    columns: dict[str, ColumnResult]
    calibration: CalibrationBins


@dataclass(frozen=True)
class FirstSummary:
    """What `finish` needs of the merged pass 1: the tables' exact AUC counts, not the tables
    (so a distributed engine can drop the tables once pass 2 has them)."""

    auc: dict[tuple[str, int], RankCounts]
    losses: dict[str, LossSums]
    calibration: CalibrationBins
    bootstrap: dict[str, BootstrapSums]
    confusion: dict[str, StatSums] = field(default_factory=dict)


def summarise(first: FirstPass) -> FirstSummary:
    return FirstSummary(
        auc={key: rank_counts(table) for key, table in first.tables.items()},
        losses=first.losses,
        calibration=first.calibration,
        bootstrap=first.bootstrap,
        confusion=first.confusion,
    )


def _rank_deltas(second: SecondPass, column: str, layout: Layout) -> dict[str, FloatArray]:
    design = layout.bootstrap
    if not second.histograms or design is None or design.groups is None:
        return {}
    weights = design.group_weights()
    candidate, baseline = second.histograms[(column, 0)], second.histograms[(column, 1)]
    return {
        kind: resampled_deltas(candidate, baseline, weights, kind) for kind in layout.rank_resamples
    }


def finish(first: FirstPass | FirstSummary, second: SecondPass, layout: Layout) -> Evaluation:
    summary = first if isinstance(first, FirstSummary) else summarise(first)
    columns = {}
    for column in layout.segments():
        boot = summary.bootstrap.get(column)
        se = None
        if boot is not None:
            means = boot.means  # (replicates, k, [cand brier, cand log, base brier, base log])
            se = bootstrap_se(means[:, :, :2] - means[:, :, 2:])
        columns[column] = ColumnResult(
            auc=(summary.auc[(column, 0)], summary.auc[(column, 1)]),
            delong=delong(second.moments[column]),
            losses=summary.losses[column],
            loss_se=se,
            confusion=summary.confusion.get(column),
            rank_deltas=_rank_deltas(second, column, layout),
        )
    return Evaluation(columns=columns, calibration=summary.calibration)
