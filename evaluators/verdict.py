"""The promotion verdict: fail, needs review, or eligible for auto-promotion, with reasons."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from evaluators.candidate import Task
from evaluators.policy import Policy, TrackedMetric
from evaluators.report import (
    CalibrationSection,
    Decision,
    EvaluationReport,
    LatencySection,
    MetricComparison,
    Outcome,
    RunStatus,
    SegmentComparison,
    Verdict,
)
from evaluators.wording import (
    delta_with_interval,
    gain_interval,
    metric_label,
    milliseconds,
    movement,
    number,
    percent,
    plural,
    signed,
    truncate,
)

# Calibration and latency breaches ask for a person rather than failing outright: a calibration
# shift may be intended (downstream thresholds can be retuned) and benchmark latency is noisy.
# A breach more than GROSS_FACTOR times the allowance is no longer a judgement call: it fails.
GROSS_FACTOR = 2.0
# Beyond this many regressed segments the reasons summarise; the report lists them all.
MAX_SEGMENT_REASONS = 10


class Severity(IntEnum):
    FAIL = 0
    REVIEW = 1
    OK = 2


@dataclass(frozen=True)
class Finding:
    severity: Severity
    text: str


def decide(*, report: EvaluationReport, policy: Policy) -> Verdict:
    """Judge a finished evaluation against the policy; pure, same input same verdict."""
    if report.status is not RunStatus.COMPLETED:
        return Verdict(decision=Decision.FAIL, reasons=[_incomplete_reason(report)])
    confidence = report.statistics.confidence if report.statistics else None
    findings = [
        *_metric_findings(report, policy, confidence),
        *_segment_findings(report, policy, confidence),
        *_calibration_findings(report, policy),
        *_latency_findings(report, policy),
        *_claim_findings(report, policy),
        *_leakage_findings(report),
    ]
    # Stable sort: failures first, then what needs a person, then what passed, each in check order.
    findings.sort(key=lambda finding: finding.severity)
    worst = findings[0].severity if findings else Severity.REVIEW
    decision = {
        Severity.FAIL: Decision.FAIL,
        Severity.REVIEW: Decision.NEEDS_REVIEW,
        Severity.OK: Decision.AUTO_PROMOTE_ELIGIBLE,
    }[worst]
    return Verdict(decision=decision, reasons=[finding.text for finding in findings])


def _incomplete_reason(report: EvaluationReport) -> str:
    what = "timed out" if report.status is RunStatus.TIMED_OUT else "stopped with an error"
    detail = f": {truncate(report.error, max_length=300)}" if report.error else ""
    return f"The evaluation {what}{detail}. Nothing was judged; comment /retest to run it again."


def judge_overall(
    comparison: MetricComparison, *, tracked: TrackedMetric, confidence: float | None
) -> Finding:
    """One tracked metric against its margin (improved) and tolerance (regressed)."""
    label = metric_label(comparison.metric)
    if not comparison.higher_is_better:
        label += " (lower is better)"
    low, high = gain_interval(comparison)
    change = delta_with_interval(comparison, confidence=confidence)
    if not all(math.isfinite(v) for v in (comparison.delta, low, high)):
        return Finding(Severity.REVIEW, f"{label} could not be estimated ({change}).")
    if not comparison.higher_is_better:  # "improved by -0.011" would read as a contradiction
        change = movement(comparison, confidence=confidence)
    if high < -tracked.tolerance:
        tolerance = number(tracked.tolerance)
        if not comparison.higher_is_better:
            return Finding(
                Severity.FAIL, f"{label} {change}: a regression beyond the {tolerance} tolerance."
            )
        return Finding(
            Severity.FAIL, f"{label} regressed by {change}, beyond the {tolerance} tolerance."
        )
    if low > tracked.margin:
        margin = number(tracked.margin)
        if not comparison.higher_is_better:
            return Finding(
                Severity.OK, f"{label} {change}: an improvement clear of the {margin} margin."
            )
        return Finding(Severity.OK, f"{label} improved by {change}, above the {margin} margin.")
    return Finding(
        Severity.REVIEW,
        f"{label} changed by {change}: not a clear improvement over the "
        f"{number(tracked.margin)} margin.",
    )


def _metric_findings(
    report: EvaluationReport, policy: Policy, confidence: float | None
) -> Iterator[Finding]:
    if not policy.metrics:
        yield Finding(Severity.REVIEW, "The policy tracks no metrics, so a person must decide.")
        return
    measured = {comparison.metric: comparison for comparison in report.overall}
    for tracked in policy.metrics:
        comparison = measured.get(tracked.name)
        if comparison is None:
            yield Finding(
                Severity.REVIEW,
                f"{metric_label(tracked.name)} is tracked by the policy but was not measured.",
            )
        else:
            yield judge_overall(comparison, tracked=tracked, confidence=confidence)


def worst_metric(segment: SegmentComparison) -> MetricComparison | None:
    """The segment's metric that moved most in the wrong direction (by its interval's top)."""
    if not segment.metrics:
        return None
    return min(segment.metrics, key=lambda m: _nan_last(gain_interval(m)[1]))


def _nan_last(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def _worst_gain(segment: SegmentComparison) -> float:
    metric = worst_metric(segment)
    return _nan_last(gain_interval(metric)[1]) if metric else math.inf


def segment_name(segment: SegmentComparison) -> str:
    return f"{segment.column}={truncate(segment.value, max_length=60)}"


def _segment_regression(segment: SegmentComparison, confidence: float | None) -> str:
    regressed = [m for m in segment.metrics if m.outcome is Outcome.REGRESSED]
    shown = regressed or [m for m in [worst_metric(segment)] if m is not None]
    detail = "; ".join(
        f"{metric_label(m.metric)} {delta_with_interval(m, confidence=confidence)}" for m in shown
    )
    return f"Segment {segment_name(segment)} regressed: {detail or 'no metric detail'}."


def _segment_findings(
    report: EvaluationReport, policy: Policy, confidence: float | None
) -> Iterator[Finding]:
    if not report.segments:
        configured = policy.benchmark.segment_columns if policy.benchmark else []
        if configured:
            yield Finding(
                Severity.REVIEW,
                f"Segments by {', '.join(configured)} are configured but none were evaluated.",
            )
        return
    # The segment's outcome already accounts for policy.segments.tolerance and the
    # multiple-comparison correction across segments, so it is trusted here, not re-derived.
    regressed = [s for s in report.segments if s.outcome is Outcome.REGRESSED]
    regressed.sort(key=_worst_gain)
    severity = Severity.FAIL if policy.segments.on_regression == "fail" else Severity.REVIEW
    for segment in regressed[:MAX_SEGMENT_REASONS]:
        yield Finding(severity, _segment_regression(segment, confidence))
    hidden = len(regressed) - MAX_SEGMENT_REASONS
    if hidden > 0:
        yield Finding(
            severity, f"{plural(hidden, 'more segment')} regressed; see the segment table."
        )
    if not regressed:
        judged = sum(s.outcome is not Outcome.TOO_SMALL for s in report.segments)
        too_small = len(report.segments) - judged
        small = f"; {too_small:,} too small to judge" if too_small else ""
        yield Finding(
            Severity.OK,
            f"No segment regressed beyond the {number(policy.segments.tolerance)} tolerance "
            f"({judged:,} of {len(report.segments):,} judged{small}).",
        )


def _calibration_findings(report: EvaluationReport, policy: Policy) -> Iterator[Finding]:
    section = report.calibration
    if section is None:
        if report.task == Task.BINARY.value:
            yield Finding(Severity.REVIEW, "Calibration was not measured.")
        return
    breaches = list(_calibration_breaches(section, policy))
    yield from breaches
    if not breaches and not section.within_tolerance:
        yield Finding(Severity.REVIEW, "Calibration is outside the policy's tolerance.")
    if not breaches and section.within_tolerance:
        allowed = number(policy.calibration.max_ece_increase)
        yield Finding(
            Severity.OK,
            f"Calibration within tolerance: ECE changed by {signed(section.ece_delta)} "
            f"(allowed +{allowed}).",
        )


def _severity(excess: float, allowed: float) -> Severity:
    return Severity.FAIL if allowed > 0 and excess > GROSS_FACTOR * allowed else Severity.REVIEW


def _calibration_breaches(section: CalibrationSection, policy: Policy) -> Iterator[Finding]:
    allowed = policy.calibration.max_ece_increase
    if not math.isfinite(section.ece_delta):
        yield Finding(Severity.REVIEW, "The change in calibration (ECE) could not be estimated.")
    elif section.ece_delta > allowed:
        before = number(section.baseline.ece_equal_width)
        after = number(section.candidate.ece_equal_width)
        yield Finding(
            _severity(section.ece_delta, allowed),
            f"Calibration worsened: ECE rose by {signed(section.ece_delta)} ({before} → {after}), "
            f"above the allowed +{number(allowed)}.",
        )
    max_shift = policy.calibration.max_threshold_shift
    for shift in section.threshold_shifts:
        if shift.share_crossing > max_shift:
            yield Finding(
                _severity(shift.share_crossing, max_shift),
                f"At threshold {number(shift.threshold, decimals=2)}, "
                f"{percent(shift.share_crossing)} of rows change side "
                f"(allowed {percent(max_shift)}).",
            )


def _latency_findings(report: EvaluationReport, policy: Policy) -> Iterator[Finding]:
    section = report.latency
    if section is None:
        if policy.latency.enabled:
            yield Finding(Severity.REVIEW, "Latency was not measured.")
        return
    yield _latency_finding(
        section, limit=policy.latency.max_p99_ratio, floor_ms=policy.latency.floor_ms
    )


def _latency_finding(section: LatencySection, *, limit: float, floor_ms: float = 0.0) -> Finding:
    ratio = section.p99_ratio
    times = (
        f"{milliseconds(section.candidate.single_p99_ms)} ms vs "
        f"{milliseconds(section.baseline.single_p99_ms)} ms"
    )
    if section.candidate.single_p99_ms <= floor_ms:
        return Finding(
            Severity.OK,
            f"Latency p99 is {times}: under the {number(floor_ms, decimals=1)} ms floor, "
            "fast enough whatever the ratio.",
        )
    if not math.isfinite(ratio):
        return Finding(Severity.REVIEW, f"Latency p99 ratio could not be computed ({times}).")
    if ratio > limit or not section.within_tolerance:
        return Finding(
            _severity(ratio, limit),
            f"Latency p99 is {ratio:.2f}× production ({times}), above the {limit:.2f}× limit.",
        )
    return Finding(
        Severity.OK, f"Latency p99 is {ratio:.2f}× production, within the {limit:.2f}× limit."
    )


def _claim_findings(report: EvaluationReport, policy: Policy) -> Iterator[Finding]:
    tolerance = number(policy.trust.claimed_tolerance)
    flagged = [check for check in report.claimed if check.flagged]
    for check in flagged:
        reproduced = (
            f"Shipyard reproduced {number(check.reproduced)} ({signed(check.difference)})"
            if check.reproduced is not None
            else "Shipyard could not reproduce it"
        )
        yield Finding(
            Severity.REVIEW,
            f"Claimed {metric_label(check.metric)} {number(check.claimed)} but {reproduced}, "
            f"beyond the {tolerance} tolerance.",
        )
    if not flagged and any(check.reproduced is not None for check in report.claimed):
        yield Finding(
            Severity.OK,
            f"The author's claimed metrics match the reproduced ones within {tolerance}.",
        )


def _leakage_findings(report: EvaluationReport) -> Iterator[Finding]:
    leakage = report.leakage
    if leakage is None or leakage.id_column is None:
        return
    if leakage.passed:
        yield Finding(
            Severity.OK,
            f"No training id in data_manifest.txt overlaps the benchmark's {leakage.id_column}.",
        )
        return
    examples = ", ".join(truncate(e, max_length=40) for e in leakage.examples[:5])
    example_text = f" (e.g. {examples})" if examples else ""
    verb = "is a benchmark row" if leakage.overlapping == 1 else "are benchmark rows"
    yield Finding(
        Severity.FAIL,
        f"Training data leaks into the benchmark: {plural(leakage.overlapping, 'id')} in "
        f"data_manifest.txt {verb}{example_text}.",
    )
