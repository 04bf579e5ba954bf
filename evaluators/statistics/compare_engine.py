"""Paired point estimates and standard errors for every segment of a partition, vectorised.

Point estimates are exact. Each model is sorted once (stable); a partition's segments then
reuse that order through a stable radix sort of small segment codes, so a segment's rows stay
score-sorted without sorting scores again. Standard errors come from DeLong (ROC AUC) or from
the Poisson bootstrap of per-(segment, row-group) sufficient statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from evaluators.candidate import Task
from evaluators.metrics.ranking import (
    auc_from_histograms,
    auc_from_runs,
    average_precision_from_histograms,
    average_precision_from_runs,
    distinct_auc,
    placements,
    stable_order,
    tie_runs,
)
from evaluators.metrics.registry import Metric
from evaluators.metrics.sums import RowStats
from evaluators.statistics.codes import CodeArray
from evaluators.statistics.intervals import DeLongSums, PoissonBootstrap, bootstrap_se
from evaluators.statistics.resample_bins import OVERALL_BINS, SEGMENT_BINS, bins_for

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]

_CELL_BUDGET = 1 << 21  # histogram cells per chunk of segments (bounds memory)
_FAST_MAX_SEGMENTS = 4096  # tie-free fast path loops over segments in Python

CANDIDATE, BASELINE = 0, 1


@dataclass
class PairedData:
    """Labels and both models' scores on the same rows, with per-model sorts cached."""

    y: IntArray
    candidate: FloatArray
    baseline: FloatArray
    task: Task
    threshold: float
    _orders: dict[tuple[int, int], IntArray] = field(default_factory=dict)
    _distinct: dict[tuple[int, int], bool] = field(default_factory=dict)
    _labels: dict[int, AnyArray] = field(default_factory=dict)
    _flags: dict[tuple[int, int], AnyArray] = field(default_factory=dict)
    _scratch: dict[str, AnyArray] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.y.shape[0])

    @property
    def problems(self) -> int:
        """Binary ranking problems: 1, or one per class (one-vs-rest)."""
        return int(self.candidate.shape[1]) if self.candidate.ndim == 2 else 1

    def model(self, which: int) -> FloatArray:
        return self.candidate if which == CANDIDATE else self.baseline

    def scores(self, which: int, problem: int) -> FloatArray:
        scores = self.model(which)
        return scores[:, problem] if scores.ndim == 2 else scores

    def labels(self, problem: int) -> AnyArray:
        if problem not in self._labels:
            binary = self.y if self.candidate.ndim == 1 else self.y == problem
            # float64 0/1: summed directly by reduceat and bincount without conversions.
            self._labels[problem] = np.asarray(binary, dtype=np.float64)
        return self._labels[problem]

    def order(self, which: int, problem: int) -> IntArray:
        """Stable ascending order of one model's scores. The sorted scores are not kept
        (80 MB per model at 10M rows): what needs them gathers a bin or a run at a time."""
        key = (which, problem)
        if key not in self._orders:
            scores = np.ascontiguousarray(self.scores(which, problem))
            order, score_sorted = stable_order(
                scores,
                positions=self.scratch("positions", np.int64, fill=np.arange),
                scratch=self.scratch("before", np.int64),
            )
            self._orders[key] = order
            self._distinct[key] = bool((score_sorted[1:] != score_sorted[:-1]).all())
        return self._orders[key]

    def scratch(
        self, name: str, dtype: npt.DTypeLike, *, fill: Callable[..., AnyArray] | None = None
    ) -> AnyArray:
        """A reusable row-length buffer: fresh 10M-row arrays cost more in page faults than
        the arithmetic done in them. `fill(n, dtype=…)` sets its contents once."""
        if name not in self._scratch:
            self._scratch[name] = (
                np.empty(self.n_rows, dtype=dtype)
                if fill is None
                else fill(self.n_rows, dtype=dtype)
            )
        buffer = self._scratch[name]
        assert buffer.dtype == np.dtype(dtype)
        return buffer

    def sorted_flags(self, which: int, problem: int) -> AnyArray:
        """0/1 labels as int8 in one model's score order (cheap to gather and to add up)."""
        key = (which, problem)
        if key not in self._flags:
            order = self.order(which, problem)
            self._flags[key] = self.labels(problem).astype(np.int8)[order]
        return self._flags[key]

    def distinct(self, which: int, problem: int) -> bool:
        """No two rows share a score (then every subset is tie-free too)."""
        self.order(which, problem)
        return self._distinct[(which, problem)]


@dataclass(frozen=True)
class Estimates:
    """One metric on every segment of a partition: values, paired SE, and how the SE was made."""

    candidate: FloatArray
    baseline: FloatArray
    se: FloatArray
    interval: str  # "delong" or "bootstrap"

    @property
    def delta(self) -> FloatArray:
        return self.candidate - self.baseline


@dataclass(frozen=True)
class SegmentIndex:
    """A partition's segment codes; `small` is a 16-bit copy when it fits (radix sort)."""

    codes: CodeArray | None  # compact: widen before arithmetic
    n_segments: int
    small: AnyArray | None
    rows: IntArray  # per segment


def _index(codes: CodeArray | None, n_segments: int, n_rows: int) -> SegmentIndex:
    if codes is None:
        return SegmentIndex(None, 1, None, np.array([n_rows], dtype=np.int64))
    small = codes
    if codes.dtype.itemsize > 2 and n_segments < 2**15:
        small = codes.astype(np.int16)
    rows = np.bincount(codes, minlength=n_segments).astype(np.int64)
    return SegmentIndex(codes, n_segments, small, rows)


def _grouped(order: IntArray, small: AnyArray | None) -> tuple[IntArray, IntArray | None]:
    if small is None:
        return order, None
    by_code = small[order]
    perm = np.argsort(by_code, kind="stable")
    return order[perm], np.asarray(by_code[perm], dtype=np.int64)


def _distinct_auc(
    data: PairedData, index: SegmentIndex, *, which: int, problem: int, placements: bool
) -> tuple[IntArray, AnyArray, FloatArray, FloatArray | None]:
    """Tie-free scores: rows and 0/1 labels in (segment, score) order, exact AUC per
    segment, placements.

    The returned rows, labels and placements live in `data`'s scratch buffers: use them
    before the next call.
    """
    order = data.order(which, problem)
    flags = data.sorted_flags(which, problem)
    if index.small is None:
        rows, label = order, flags
    else:
        codes = data.scratch(f"codes-{index.small.dtype}", index.small.dtype)
        by_code = np.take(index.small, order, out=codes)
        perm = np.argsort(by_code, kind="stable")
        rows = np.take(order, perm, out=data.scratch("rows", np.int64))
        label = np.take(flags, perm, out=data.scratch("label", np.int8))
        del perm
    placed = data.scratch("placed", np.float64) if placements else None
    auc = distinct_auc(
        label=label,
        counts=index.rows,
        positions=data.scratch("positions", np.int64, fill=np.arange),
        before=data.scratch("before", np.int64),
        mask=data.scratch("mask", np.bool_),
        placements=placed,
    )
    return rows, label, auc, placed


def _pair(
    data: PairedData,
    sums: DeLongSums,
    which: int,
    rows: IntArray,
    labels: AnyArray,
    placed: FloatArray,
    counts: IntArray,
) -> None:
    """One model's placements, in its (segment, score) order, into the DeLong sums."""
    in_rows = data.scratch("in_rows", np.float64)
    if which == BASELINE:
        in_rows[rows] = placed
    else:
        sums.add_pairs(
            candidate=placed, baseline_by_row=in_rows, rows=rows, labels=labels, counts=counts
        )


@dataclass
class _RankPass:
    auc: FloatArray  # (k, problems, 2)
    ap: FloatArray  # (k, 2)
    delong: DeLongSums | None  # candidate minus baseline placements, summed per cell
    binned: dict[tuple[int, int], IntArray]  # (model, problem) -> bin of each row in its segment


def _rank_points(
    data: PairedData,
    index: SegmentIndex,
    *,
    need_ap: bool,
    need_placements: bool,
    bins: IntArray | None,
) -> _RankPass:
    """Exact AUC and AP per segment; DeLong placements and resampling bins when asked."""
    k = index.n_segments
    found = _RankPass(
        auc=np.empty((k, data.problems, 2)),
        ap=np.full((k, 2), np.nan),
        delong=DeLongSums.zeros(k) if need_placements else None,
        binned={},
    )
    segment_offset = np.concatenate([[0], np.cumsum(index.rows)[:-1]])
    fast = k <= _FAST_MAX_SEGMENTS
    for problem in range(data.problems):
        labels = data.labels(problem)
        # The baseline goes first: its placements wait in row order for the candidate's.
        for which in (BASELINE, CANDIDATE):
            if data.distinct(which, problem) and not need_ap and bins is None and fast:
                rows, label, auc, placed = _distinct_auc(
                    data, index, which=which, problem=problem, placements=need_placements
                )
                found.auc[:, problem, which] = auc
                if found.delong is not None and placed is not None:
                    _pair(data, found.delong, which, rows, label, placed, index.rows)
                continue
            order = data.order(which, problem)
            rows, segment_sorted = _grouped(order, index.small)
            label_sorted = labels[rows]
            distinct = data.distinct(which, problem)
            runs = tie_runs(
                score_sorted=label_sorted if distinct else data.scores(which, problem)[rows],
                label_sorted=label_sorted,
                segment_sorted=segment_sorted,
                n_segments=k,
                distinct=distinct,
            )
            found.auc[:, problem, which] = auc_from_runs(runs, n_segments=k)
            if need_ap and problem == 0:
                found.ap[:, which] = average_precision_from_runs(runs, n_segments=k)
            if found.delong is not None:
                placed = placements(runs, label_sorted=label_sorted)
                _pair(data, found.delong, which, rows, label_sorted, placed, index.rows)
            if bins is not None:
                # Tied rows share the bin of their run's first row: ties never straddle bins.
                within = runs.starts - segment_offset[runs.segment]
                run_bin = within * bins[runs.segment] // index.rows[runs.segment]
                binned = np.empty(data.n_rows, dtype=np.int64)
                binned[rows] = np.repeat(run_bin, runs.lengths)
                found.binned[(which, problem)] = binned
    return found


def _resampled_histograms(
    boot: PoissonBootstrap, cell: IntArray, *, segments: int, width: int
) -> FloatArray:
    """Reweighted (segment, group, width) cell counts -> (resamples, segments, width).

    Small segments fill few cells, so their counts go through a sparse product (cost: filled
    cells x resamples) instead of a dense one (cost: all cells x resamples).
    """
    groups = boot.groups
    counts = np.bincount(cell, minlength=segments * groups * width).astype(np.float64)
    filled = np.flatnonzero(counts)
    if filled.size * 8 >= counts.size:
        return boot.resample(counts.reshape(segments, groups, width))
    segment, rest = np.divmod(filled, groups * width)
    group, column = np.divmod(rest, width)
    matrix = sparse.csc_matrix(
        (counts[filled], (segment * width + column, group)), shape=(segments * width, groups)
    )
    product = np.asarray(matrix @ boot.weights.T)  # (segments * width, resamples)
    return np.ascontiguousarray(product.T).reshape(boot.resamples, segments, width)


def _chunks(bins: IntArray, *, groups: int) -> list[tuple[int, int]]:
    """Consecutive segments whose histograms fit the cell budget together."""
    out, first, widest = [], 0, 0
    for segment, count in enumerate(bins.tolist()):
        widest_if_added = max(widest, count)
        if segment > first and (segment - first + 1) * groups * 2 * widest_if_added > _CELL_BUDGET:
            out.append((first, segment))
            first, widest_if_added = segment, count
        widest = widest_if_added
    out.append((first, bins.shape[0]))
    return out


def _rank_resamples(
    data: PairedData,
    index: SegmentIndex,
    boot: PoissonBootstrap,
    *,
    kinds: set[str],
    bins: IntArray,
    binned: dict[tuple[int, int], IntArray],
) -> dict[str, FloatArray]:
    """Resampled deltas (resamples, k) for 'auc' (mean over problems) and 'ap'."""
    k, groups = index.n_segments, boot.groups
    if index.codes is None:
        rows_by_segment, offsets = np.arange(data.n_rows), np.array([0, data.n_rows])
    else:
        assert index.small is not None
        rows_by_segment = np.argsort(index.small, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(index.rows)])
    out = {kind: np.zeros((boot.resamples, k)) for kind in kinds}
    for first, last in _chunks(bins, groups=groups):
        width = int(bins[first:last].max())
        rows = rows_by_segment[offsets[first] : offsets[last]]
        local = (
            np.zeros(rows.size, np.int64)
            if index.codes is None
            else index.codes[rows].astype(np.int64) - first
        )
        base_key = (local * groups + boot.row_group[rows]) * 2
        for problem in range(data.problems):
            key = (base_key + data.labels(problem)[rows].astype(np.int64)) * width
            values: dict[str, list[FloatArray]] = {kind: [] for kind in kinds}
            for which in (CANDIDATE, BASELINE):
                cell = key + binned[(which, problem)][rows]
                hist = _resampled_histograms(boot, cell, segments=last - first, width=2 * width)
                hist = hist.reshape(boot.resamples, last - first, 2, width)
                if "auc" in kinds:
                    values["auc"].append(auc_from_histograms(hist[:, :, 1], hist[:, :, 0]))
                if "ap" in kinds and problem == 0:
                    values["ap"].append(
                        average_precision_from_histograms(hist[:, :, 1], hist[:, :, 0])
                    )
            if "auc" in kinds:
                delta = values["auc"][0] - values["auc"][1]
                out["auc"][:, first:last] += delta / data.problems
            if "ap" in kinds and problem == 0:
                out["ap"][:, first:last] = values["ap"][0] - values["ap"][1]
    return out


def _sum_estimates(
    data: PairedData, index: SegmentIndex, metrics: list[Metric], boot: PoissonBootstrap
) -> dict[str, Estimates]:
    k, groups = index.n_segments, boot.groups
    key = (
        boot.row_group
        if index.codes is None
        else np.multiply(index.codes, groups, dtype=np.int64) + boot.row_group
    )
    cache: dict[tuple[int, int], FloatArray] = {}
    out: dict[str, Estimates] = {}
    for metric in metrics:
        assert metric.row_stats is not None and metric.finish is not None
        per_model = []
        for which in (CANDIDATE, BASELINE):
            cache_key = (id(metric.row_stats), which)
            if cache_key not in cache:
                stats: RowStats = metric.row_stats(
                    y_true=data.y, y_score=data.model(which), threshold=data.threshold
                )
                sums = stats.sums(key=key, n_keys=k * groups)
                cache[cache_key] = sums.reshape(k, groups, stats.width)
            per_model.append(cache[cache_key])
        points = [metric.finish(sums.sum(axis=1)) for sums in per_model]
        resampled = [metric.finish(boot.resample(sums)) for sums in per_model]
        out[metric.name] = Estimates(
            candidate=points[0],
            baseline=points[1],
            se=bootstrap_se(resampled[0] - resampled[1]),
            interval="bootstrap",
        )
    return out


def estimate(
    *,
    data: PairedData,
    codes: CodeArray | None,
    n_segments: int,
    metrics: list[Metric],
    delong: set[str],
    bootstrap: PoissonBootstrap | None,
) -> dict[str, Estimates]:
    """Every metric on every segment (codes None: one segment, all rows).

    `delong` names the rank metrics whose SE comes from DeLong; the rest need `bootstrap`.
    """
    index = _index(codes, n_segments, data.n_rows)
    rank = [metric for metric in metrics if metric.kind == "rank"]
    summed = [metric for metric in metrics if metric.kind == "sum"]
    needs_boot = [metric for metric in metrics if metric.name not in delong]
    if needs_boot and bootstrap is None:
        raise ValueError("a bootstrap is needed for " + ", ".join(m.name for m in needs_boot))
    out: dict[str, Estimates] = {}
    if rank:
        names = {metric.name for metric in rank}
        kinds = {"ap" if m.name == "pr_auc" else "auc" for m in rank if m.name not in delong}
        bins = (
            bins_for(index.rows, cap=OVERALL_BINS if codes is None else SEGMENT_BINS)
            if kinds
            else None
        )
        found = _rank_points(
            data,
            index,
            need_ap="pr_auc" in names,
            need_placements=bool(names & delong),
            bins=bins,
        )
        resampled = (
            _rank_resamples(data, index, bootstrap, kinds=kinds, bins=bins, binned=found.binned)
            if bootstrap is not None and bins is not None
            else {}
        )
        for metric in rank:
            kind = "ap" if metric.name == "pr_auc" else "auc"
            values = found.ap if kind == "ap" else found.auc.mean(axis=1)
            if metric.name in delong:
                assert found.delong is not None
                se, how = found.delong.paired_se(), "delong"
            else:
                se, how = bootstrap_se(resampled[kind]), "bootstrap"
            out[metric.name] = Estimates(values[:, 0], values[:, 1], se, how)
    if summed:
        assert bootstrap is not None
        out.update(_sum_estimates(data, index, summed, bootstrap))
    return {metric.name: out[metric.name] for metric in metrics}
