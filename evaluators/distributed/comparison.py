"""Merged mergeable statistics -> the same report sections `compare` fills for the local engine.

Every binary metric, computed exactly from partial results that merge by addition: ROC AUC
with DeLong intervals (or the bootstrap, as `statistics.method` says); average precision, Brier,
log loss, accuracy, precision, recall and F1 with the hashed Poisson bootstrap; equal-width
calibration and threshold shifts. Regression's MAE, RMSE and R² from exact sums, with the same
bootstrap. Multiclass: accuracy, macro F1 and log loss from exact sums of their row statistics,
one-vs-rest ROC AUC from each class's binary passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from evaluators.candidate import Task
from evaluators.distributed import partition_tasks as tasks
from evaluators.distributed.engine import Summed
from evaluators.distributed.errors import DistributedError
from evaluators.metrics.registry import Metric, get_metric
from evaluators.policy import CalibrationPolicy, Policy
from evaluators.report import (
    CalibrationSection,
    CalibrationStats,
    ReliabilityBin,
    StatisticsInfo,
    ThresholdShift,
)
from evaluators.statistics.compare import (
    Comparison,
    SegmentRows,
    overall_comparisons,
    segment_comparisons,
    unique_values,
)
from evaluators.statistics.compare_engine import Estimates
from evaluators.statistics.intervals import DEFAULT_GROUPS, bootstrap_se
from evaluators.statistics.mergeable.bootstrap import HashedPoisson
from evaluators.statistics.mergeable.evaluation import OVERALL, ColumnResult, Layout
from evaluators.statistics.mergeable.regression import METRICS, RegressionSums, regression_sums
from evaluators.statistics.mergeable.sums import CalibrationBins, StatSums, stat_sums
from evaluators.statistics.resample_bins import OVERALL_BINS, SEGMENT_BINS
from evaluators.statistics.segments import Partition, eligible

_LOSS_TERM = {"brier": 0, "log_loss": 1}
_CONFUSION = ("accuracy", "precision", "recall", "f1")  # of counts at the model's threshold
# Metric names as policies write them; for multiclass, roc_auc and f1 mean the one-vs-rest and
# macro ones (registry aliases).
_SUPPORTED = {
    Task.BINARY: ("roc_auc", "pr_auc", *_LOSS_TERM, *_CONFUSION),
    Task.MULTICLASS: ("roc_auc", "ovr_roc_auc", "accuracy", "f1", "macro_f1", "log_loss"),
    Task.REGRESSION: METRICS,
}

_RANK_KIND = {"roc_auc": "auc", "pr_auc": "ap"}  # histograms.KINDS

DELONG_TEXT = (
    "DeLong paired (analytic): variance of the paired difference of placement values, normal "
    "interval and p-value; exact, from count tables merged across partitions"
)


def metrics_of(policy: Policy, task: Task) -> tuple[list[Metric], list[Metric]]:
    """Overall and per-segment metrics; refuses what the dask engine cannot compute exactly."""
    supported = _SUPPORTED[task]
    overall = unique_values([policy.primary_metric, *(t.name for t in policy.metrics)])
    segment = unique_values(policy.segments.metrics or [policy.primary_metric])
    names = unique_values([*overall, *segment])
    unsupported = [n for n in names if n not in supported]
    if unsupported:
        raise DistributedError(
            f"metric(s) {', '.join(unsupported)} are not supported on the dask engine "
            f"(supported exactly: {', '.join(supported)}); use statistics.engine: local"
        )
    return (
        [get_metric(n, task=task) for n in overall],
        [get_metric(n, task=task) for n in segment],
    )


def layout_of(
    policy: Policy, columns: dict[str, int], metrics: list[Metric], *, threshold: float
) -> Layout:
    """`threshold`: the candidate's decision threshold (its model.yaml), as the local engine."""
    names = {m.name for m in metrics}
    if metrics and metrics[0].task is Task.MULTICLASS:  # every interval from the bootstrap
        return Layout(columns=columns, bootstrap=_design(policy))
    needs_confusion = bool(names & set(_CONFUSION))
    # ROC AUC's interval comes from the bootstrap when the policy says so (as `compare`).
    bootstrapped_auc = "roc_auc" in names and policy.statistics.method == "bootstrap"
    ranked = (("auc",) if bootstrapped_auc else ()) + (("ap",) if "pr_auc" in names else ())
    needs_boot = needs_confusion or bool(ranked) or bool(names & {*_LOSS_TERM, *METRICS})
    return Layout(
        columns=columns,
        calibration_bins=policy.calibration.bins,
        threshold=threshold if needs_confusion else None,
        rank_resamples=ranked,
        bootstrap=_design(policy) if needs_boot else None,
    )


def _design(policy: Policy) -> HashedPoisson:
    return HashedPoisson(
        seed=policy.statistics.seed,
        replicates=policy.statistics.bootstrap_resamples,
        groups=DEFAULT_GROUPS,
    )


def one_vs_rest_layout(layout: Layout, metrics: list[Metric]) -> Layout | None:
    """Each class's binary passes, for one-vs-rest ROC AUC (None when it is not asked):
    exact AUC from the count tables, the SE from binned histograms, as the local engine."""
    if not any(m.name == "ovr_roc_auc" for m in metrics):
        return None
    return replace(layout, rank_resamples=("auc",), threshold=None)


REGRESSION = "regression"  # the name of regression's sums among a column's


def summers_of(task: Task, metrics: list[Metric]) -> dict[str, tasks.Summer]:
    """What each partition sums: regression's sums, or each metric family's row statistics
    by the family's name (shared where metrics share one: accuracy and macro F1 both read the
    confusion matrix)."""
    if task is Task.REGRESSION:
        return {REGRESSION: regression_sums}
    return {
        m.row_stats.__name__: partial(stat_sums, m.row_stats)
        for m in metrics
        if m.row_stats is not None
    }


def summed_estimates(sums: StatSums, metric: Metric, layout: Layout) -> Estimates:
    """The metric's own finish over merged exact sums (integer counts: the local engine's
    values to the bit); replicates reweigh the hashed groups."""
    design = layout.bootstrap
    assert design is not None and metric.finish is not None
    weights = design.group_weights()
    resampled = [metric.finish(sums.replicates(m, weights)) for m in (0, 1)]
    return Estimates(
        candidate=metric.finish(sums.totals(0)),
        baseline=metric.finish(sums.totals(1)),
        se=bootstrap_se(resampled[0] - resampled[1]),
        interval="bootstrap",
    )


def _estimates(result: ColumnResult, metrics: list[Metric], layout: Layout) -> dict[str, Estimates]:
    out = {}
    for metric in metrics:
        kind = _RANK_KIND.get(metric.name)
        if kind in layout.rank_resamples:  # exact points, SE from the binned histograms
            points = [c.average_precision if kind == "ap" else c.auc for c in result.auc]
            out[metric.name] = Estimates(points[0], points[1], result.rank_se(kind), "bootstrap")
            continue
        if metric.name in _CONFUSION:
            assert result.confusion is not None
            out[metric.name] = summed_estimates(result.confusion, metric, layout)
            continue
        if metric.name == "roc_auc":
            out[metric.name] = Estimates(
                candidate=result.auc[0].auc,
                baseline=result.auc[1].auc,
                se=result.delong.se_delta,
                interval="delong",
            )
            continue
        term = _LOSS_TERM[metric.name]
        values = result.losses.brier if term == 0 else result.losses.log_loss
        assert result.loss_se is not None
        out[metric.name] = Estimates(
            candidate=values[:, 0],
            baseline=values[:, 1],
            se=result.loss_se[:, term],
            interval="bootstrap",
        )
    return out


def _stats(bins: CalibrationBins, model: int, ece: float, brier: float) -> CalibrationStats:
    n = bins.count.shape[1]
    count, positives, predicted = bins.count[model], bins.positives[model], bins.predicted[model]
    return CalibrationStats(
        ece_equal_width=ece,
        ece_equal_mass=None,  # needs row order within ties: not mergeable (see the docs)
        brier=brier,
        reliability=[
            ReliabilityBin(
                lower=b / n,
                upper=(b + 1) / n,
                count=int(count[b]),
                mean_predicted=float(predicted[b] / count[b]),
                observed_rate=float(positives[b] / count[b]),
            )
            for b in np.flatnonzero(count)
        ],
    )


def calibration_of(
    bins: CalibrationBins, overall: ColumnResult, above: np.ndarray, policy: CalibrationPolicy
) -> CalibrationSection:
    ece = bins.ece_equal_width
    brier = overall.losses.brier[0]
    rows = float(overall.losses.rows[0])
    shifts = [
        ThresholdShift(
            threshold=t,
            share_above_candidate=float(above[i, 0] / rows),
            share_above_baseline=float(above[i, 1] / rows),
            share_crossing=float(above[i, 2] / rows),
        )
        for i, t in enumerate(policy.thresholds)
    ]
    delta = float(ece[0] - ece[1])
    within = delta <= policy.max_ece_increase and all(
        s.share_crossing <= policy.max_threshold_shift for s in shifts
    )
    return CalibrationSection(
        bins=policy.bins,
        candidate=_stats(bins, 0, float(ece[0]), float(brier[0])),
        baseline=_stats(bins, 1, float(ece[1]), float(brier[1])),
        ece_delta=delta,
        threshold_shifts=shifts,
        within_tolerance=bool(within),
    )


def regression_estimates(
    sums: RegressionSums, metrics: list[Metric], layout: Layout
) -> dict[str, Estimates]:
    design = layout.bootstrap
    assert design is not None  # every regression metric's interval is bootstrapped
    weights = design.group_weights()
    out = {}
    for metric in metrics:
        points = sums.points(metric.name)
        resampled = sums.replicates(metric.name, weights)
        out[metric.name] = Estimates(
            candidate=points[:, 0],
            baseline=points[:, 1],
            se=bootstrap_se(resampled[..., 0] - resampled[..., 1]),
            interval="bootstrap",
        )
    return out


def multiclass_estimates(
    merged: Summed, column: str, metrics: list[Metric], layout: Layout
) -> dict[str, Estimates]:
    out = {}
    for metric in metrics:
        if metric.row_stats is not None:
            sums = merged.sums.sums[(column, metric.row_stats.__name__)]
            out[metric.name] = summed_estimates(sums, metric, layout)
            continue
        # One-vs-rest ROC AUC: the classes' exact AUCs averaged; each replicate's difference
        # averaged over the classes the same way (as the local engine), then its SE.
        results = [problem.evaluation.columns[column] for problem in merged.problems]
        points = [np.mean([r.auc[model].auc for r in results], axis=0) for model in (0, 1)]
        deltas = np.mean([r.rank_deltas["auc"] for r in results], axis=0)
        out[metric.name] = Estimates(points[0], points[1], bootstrap_se(deltas), "bootstrap")
    return out


@dataclass(frozen=True)
class View:
    """What the report needs of merged statistics, per segment column (OVERALL: all rows):
    each metric's estimates, and the segments' rows and positives (None: not a binary task)."""

    estimates: Callable[[str, list[Metric]], dict[str, Estimates]]
    counts: Callable[[str], tuple[np.ndarray, np.ndarray | None]]


def binary_view(columns: dict[str, ColumnResult], layout: Layout) -> View:
    return View(
        lambda column, metrics: _estimates(columns[column], metrics, layout),
        lambda column: (columns[column].losses.rows, columns[column].losses.positives),
    )


def regression_view(merged: Summed, layout: Layout) -> View:
    sums = merged.sums.sums
    return View(
        lambda column, metrics: regression_estimates(sums[(column, REGRESSION)], metrics, layout),
        lambda column: (sums[(column, tasks.ROWS)], None),
    )


def multiclass_view(merged: Summed, layout: Layout) -> View:
    return View(
        lambda column, metrics: multiclass_estimates(merged, column, metrics, layout),
        lambda column: (merged.sums.sums[(column, tasks.ROWS)], None),
    )


def comparison_of(
    *,
    view: View,
    calibration: CalibrationSection | None,
    labels: dict[str, list[str]],
    policy: Policy,
    overall_metrics: list[Metric],
    segment_metrics: list[Metric],
    layout: Layout,
) -> Comparison:
    """The report's comparison from each column's estimates and (rows, positives) counts."""
    overall = overall_comparisons(overall_metrics, view.estimates(OVERALL, overall_metrics), policy)
    found = []
    for column, values in labels.items():
        rows, positives = view.counts(column)
        found.append(
            SegmentRows(
                partition=Partition(column=column, codes=np.empty(0, np.int64), values=values),
                rows=rows,
                positives=positives,
                judged=eligible(
                    rows=rows,
                    positives=positives,
                    min_size=policy.segments.min_size,
                    min_positives=policy.segments.min_positives,
                ),
                estimates=view.estimates(column, segment_metrics),
            )
        )
    segments, correction = segment_comparisons(found, segment_metrics, policy)
    boot = layout.bootstrap
    described = {}
    for metric in {m.name: m for m in [*overall_metrics, *segment_metrics]}.values():
        if metric.name == "roc_auc" and "auc" not in layout.rank_resamples:
            described[metric.name] = DELONG_TEXT
        elif boot is not None:
            described[metric.name] = (
                f"paired Poisson bootstrap on sufficient statistics, {boot.replicates} "
                f"resamples, seed {boot.seed}: Poisson(1) weights per hashed row-group "
                f"({boot.groups} groups, keyed by row id, so the same whatever the "
                "partitioning) reweight per-group sums; normal interval and p-value from the "
                "bootstrap SE"
            )
            if metric.kind == "rank":
                described[metric.name] += (
                    f"; for the resamples only, scores are binned into {OVERALL_BINS} quantile "
                    f"bins per model ({SEGMENT_BINS} per segment), as on the local engine; the "
                    "point estimate is exact"
                )
    return Comparison(
        overall=overall,
        segments=segments,
        calibration=calibration,
        statistics=StatisticsInfo(
            confidence=policy.statistics.confidence,
            interval_methods=described,
            correction=correction,
            bootstrap_resamples=policy.statistics.bootstrap_resamples,
            seed=policy.statistics.seed,
        ),
    )
