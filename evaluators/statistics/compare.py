"""Candidate vs production on the same rows: every metric, segment and interval, in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evaluators.candidate import Task
from evaluators.metrics.registry import Metric, get_metric
from evaluators.policy import Policy
from evaluators.report import (
    CalibrationSection,
    MetricComparison,
    Outcome,
    SegmentComparison,
    StatisticsInfo,
)
from evaluators.statistics import multiple_testing
from evaluators.statistics.calibration import calibration_section
from evaluators.statistics.compare_engine import (
    BASELINE,
    CANDIDATE,
    Estimates,
    PairedData,
    estimate,
)
from evaluators.statistics.intervals import (
    PoissonBootstrap,
    make_poisson_bootstrap,
    normal_interval,
    normal_p_value,
)
from evaluators.statistics.resample_bins import OVERALL_BINS, SEGMENT_BINS
from evaluators.statistics.segments import Partition, eligible, judge, partitions, segment_outcome
from evaluators.wording import confidence_label

AnyArray = npt.NDArray[Any]


@dataclass(frozen=True)
class Comparison:
    """What `compare` finds: the report sections it fills."""

    overall: list[MetricComparison]
    segments: list[SegmentComparison]
    calibration: CalibrationSection | None
    statistics: StatisticsInfo


def unique_values(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _validated(
    *, y_true: AnyArray, candidate: AnyArray, baseline: AnyArray, task: Task, threshold: float
) -> PairedData:
    y = np.asarray(y_true)
    cand = np.asarray(candidate, dtype=np.float64)
    base = np.asarray(baseline, dtype=np.float64)
    if cand.shape != base.shape or cand.shape[0] != y.shape[0] or y.ndim != 1:
        raise ValueError(
            f"shapes differ: y_true {y.shape}, candidate {cand.shape}, baseline {base.shape}"
        )
    if y.shape[0] == 0:
        raise ValueError("no rows to compare")
    if not (np.isfinite(cand).all() and np.isfinite(base).all()):
        raise ValueError("predictions contain NaN or infinite values")
    expected_ndim = 2 if task is Task.MULTICLASS else 1
    if cand.ndim != expected_ndim:
        raise ValueError(f"{task.value} predictions must have {expected_ndim} dimension(s)")
    if task is Task.REGRESSION:
        truth = y.astype(np.float64)
        if not np.isfinite(truth).all():
            raise ValueError("y_true contains NaN or infinite values")
        return PairedData(truth, cand, base, task, threshold)  # type: ignore[arg-type]
    labels = y.astype(np.int64, copy=False)
    classes = 2 if task is Task.BINARY else cand.shape[1]
    if not np.array_equal(labels, y) or labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"y_true must hold class indices 0..{classes - 1}")
    return PairedData(labels, cand, base, task, threshold)


def _methods(
    metrics: list[Metric], policy: Policy, boot: PoissonBootstrap | None
) -> tuple[set[str], dict[str, str]]:
    """Which metrics use DeLong, and a plain description of each metric's interval."""
    use_delong = policy.statistics.method in ("auto", "delong")
    delong = {m.name for m in metrics if use_delong and m.analytic_interval == "DeLong"}
    described = {}
    for metric in metrics:
        if metric.name in delong:
            described[metric.name] = (
                "DeLong paired (analytic): variance of the paired difference of placement "
                "values, normal interval and p-value"
            )
            continue
        assert boot is not None
        text = boot.describe()
        if metric.kind == "rank":
            text += (
                f"; for the resamples only, scores are binned into {OVERALL_BINS} quantile bins "
                f"per model ({SEGMENT_BINS} per segment); the point estimate is exact and the "
                "binned AUC differs from it by < 1e-3"
            )
        described[metric.name] = text
    return delong, described


def _short(how: str, policy: Policy) -> str:
    if how == "delong":
        return "delong"
    return f"paired bootstrap ({policy.statistics.bootstrap_resamples} resamples)"


def overall_comparisons(
    metrics: list[Metric], estimates: dict[str, Estimates], policy: Policy
) -> list[MetricComparison]:
    tracked = {t.name: t for t in policy.metrics}
    out = []
    for metric in metrics:
        est = estimates[metric.name]
        low, high = normal_interval(
            delta=est.delta, se=est.se, confidence=policy.statistics.confidence
        )
        p_value = float(normal_p_value(delta=est.delta, se=est.se)[0])
        rule = tracked.get(metric.name)
        out.append(
            MetricComparison(
                metric=metric.name,
                higher_is_better=metric.higher_is_better,
                candidate=float(est.candidate[0]),
                baseline=float(est.baseline[0]),
                delta=float(est.delta[0]),
                ci_low=float(low[0]),
                ci_high=float(high[0]),
                method=_short(est.interval, policy),
                p_value=p_value if np.isfinite(p_value) else None,
                se=float(est.se[0]) if np.isfinite(est.se[0]) else None,
                interval=confidence_label(policy.statistics.confidence),
                outcome=judge(
                    low=float(low[0]),
                    high=float(high[0]),
                    higher_is_better=metric.higher_is_better,
                    margin=rule.margin if rule else 0.0,
                    tolerance=rule.tolerance if rule else 0.0,
                ),
            )
        )
    return out


@dataclass(frozen=True)
class SegmentRows:
    partition: Partition
    rows: AnyArray
    positives: AnyArray | None
    judged: AnyArray
    estimates: dict[str, Estimates]


def segment_comparisons(
    found: list[SegmentRows], metrics: list[Metric], policy: Policy
) -> tuple[list[SegmentComparison], str]:
    """Segment comparisons: unadjusted and multiplicity-adjusted intervals, regression p-values
    of 'not worse than -tolerance' and the Holm / Benjamini–Hochberg flags decided on them."""
    confidence, alpha = policy.statistics.confidence, 1 - policy.statistics.confidence
    correction, tolerance = policy.segments.correction, policy.segments.tolerance
    tests = [
        (i, int(s), metric)
        for i, item in enumerate(found)
        for s in np.flatnonzero(item.judged)
        for metric in metrics
    ]
    delta = np.array([found[i].estimates[m.name].delta[s] for i, s, m in tests], np.float64)
    se = np.array([found[i].estimates[m.name].se[s] for i, s, m in tests], np.float64)
    gain = np.where([m.higher_is_better for _, _, m in tests], delta, -delta)
    raw = multiple_testing.regression_p_values(gain=gain, se=se, tolerance=tolerance)
    adjusted = multiple_testing.adjust(raw, method=correction) if tests else raw
    flagged = adjusted < alpha
    rejected = int(flagged.sum())
    level = multiple_testing.interval_confidence(
        confidence=confidence, tests=len(tests), rejected=rejected, method=correction
    )
    unadjusted_label = f"unadjusted {confidence_label(confidence)}"
    adjusted_label = multiple_testing.adjusted_interval_label(
        method=correction, level=level, rejected=rejected
    )
    position = {(i, s, m.name): j for j, (i, s, m) in enumerate(tests)}
    tracked = {t.name: t for t in policy.metrics}
    out = []
    for i, item in enumerate(found):
        for s, value in enumerate(item.partition.values):
            comparisons = []
            if item.judged[s]:
                for metric in metrics:
                    j = position[(i, s, metric.name)]
                    low, high = normal_interval(delta=delta[j], se=se[j], confidence=confidence)
                    adj_low, adj_high = normal_interval(delta=delta[j], se=se[j], confidence=level)
                    gain_low = float(adj_low if metric.higher_is_better else -adj_high)
                    rule = tracked.get(metric.name)
                    outcome = (
                        Outcome.REGRESSED
                        if flagged[j]
                        else Outcome.IMPROVED
                        if np.isfinite(gain_low) and gain_low > (rule.margin if rule else 0.0)
                        else Outcome.UNCHANGED
                    )
                    est = item.estimates[metric.name]
                    comparisons.append(
                        MetricComparison(
                            metric=metric.name,
                            higher_is_better=metric.higher_is_better,
                            candidate=float(est.candidate[s]),
                            baseline=float(est.baseline[s]),
                            delta=float(delta[j]),
                            ci_low=float(low),
                            ci_high=float(high),
                            method=_short(est.interval, policy),
                            p_value=float(raw[j]),
                            adjusted_p_value=float(adjusted[j]),
                            outcome=outcome,
                            se=float(se[j]) if np.isfinite(se[j]) else None,
                            interval=unadjusted_label,
                            adjusted_ci_low=float(adj_low),
                            adjusted_ci_high=float(adj_high),
                            adjusted_interval=adjusted_label,
                        )
                    )
            out.append(
                SegmentComparison(
                    column=item.partition.column,
                    value=value,
                    rows=int(item.rows[s]),
                    positives=None if item.positives is None else int(item.positives[s]),
                    metrics=comparisons,
                    outcome=segment_outcome([c.outcome for c in comparisons])
                    if item.judged[s]
                    else Outcome.TOO_SMALL,
                )
            )
    summary = multiple_testing.describe(
        method=correction,
        confidence=confidence,
        tests=len(tests),
        level=level,
        rejected=rejected,
        tolerance=tolerance,
    )
    return out, summary


def compare(
    *,
    y_true: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    segments: pd.DataFrame | None,
    policy: Policy,
    task: Task,
    threshold: float = 0.5,
) -> Comparison:
    """Score candidate and production on the same rows, overall and per segment, with paired
    intervals, multiple-testing control across segments and (binary) calibration."""
    data = _validated(
        y_true=y_true, candidate=candidate, baseline=baseline, task=task, threshold=threshold
    )
    overall_metrics = [
        get_metric(name, task=task)
        for name in unique_values([policy.primary_metric, *(t.name for t in policy.metrics)])
    ]
    segment_metrics = [
        get_metric(name, task=task)
        for name in unique_values(policy.segments.metrics or [policy.primary_metric])
    ]
    columns = partitions(segments, n_rows=data.n_rows)
    everything = {m.name: m for m in [*overall_metrics, *segment_metrics]}
    stats_policy = policy.statistics
    use_delong = stats_policy.method in ("auto", "delong")
    needs_boot = any(
        not (use_delong and m.analytic_interval == "DeLong") for m in everything.values()
    )
    boot = (
        make_poisson_bootstrap(
            n_rows=data.n_rows, resamples=stats_policy.bootstrap_resamples, seed=stats_policy.seed
        )
        if needs_boot
        else None
    )
    delong, described = _methods(list(everything.values()), policy, boot)
    overall = overall_comparisons(
        overall_metrics,
        estimate(
            data=data,
            codes=None,
            n_segments=1,
            metrics=overall_metrics,
            delong=delong,
            bootstrap=boot,
        ),
        policy,
    )
    found = []
    for part in columns:
        rows = np.bincount(part.codes, minlength=part.size)
        positives = (
            np.bincount(part.codes, weights=data.y, minlength=part.size).astype(np.int64)
            if task is Task.BINARY
            else None
        )
        judged = eligible(
            rows=rows,
            positives=positives,
            min_size=policy.segments.min_size,
            min_positives=policy.segments.min_positives,
        )
        found.append(
            SegmentRows(
                partition=part,
                rows=rows,
                positives=positives,
                judged=judged,
                estimates=estimate(
                    data=data,
                    codes=part.codes,
                    n_segments=part.size,
                    metrics=segment_metrics,
                    delong=delong,
                    bootstrap=boot,
                ),
            )
        )
    segment_results, correction = segment_comparisons(found, segment_metrics, policy)
    calibration = None
    if task is Task.BINARY:
        calibration = calibration_section(
            y_true=data.labels(0),  # float 0/1 copy of y, already made
            candidate=data.candidate,
            baseline=data.baseline,
            policy=policy.calibration,
            candidate_order=data.order(CANDIDATE, 0),
            baseline_order=data.order(BASELINE, 0),
        )
    return Comparison(
        overall=overall,
        segments=segment_results,
        calibration=calibration,
        statistics=StatisticsInfo(
            confidence=stats_policy.confidence,
            interval_methods=described,
            correction=correction,
            bootstrap_resamples=stats_policy.bootstrap_resamples,
            seed=stats_policy.seed,
        ),
    )
