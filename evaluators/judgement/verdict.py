"""The promotion verdict: fail, needs review, or eligible for auto-promotion, with reasons."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from statistics import NormalDist

from evaluators.candidate import Task
from evaluators.policy import LatencyPolicy, Policy, TrackedMetric
from evaluators.report import (
    CalibrationSection,
    Decision,
    EvaluationReport,
    LatencySection,
    MetricComparison,
    Outcome,
    RatioBounds,
    RunStatus,
    SegmentComparison,
    Verdict,
)
from evaluators.wording import (
    delta_with_interval,
    gain_interval,
    interval,
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
    level = confidence if confidence is not None else 0.95
    # A segment's REGRESSED outcome is the multiple-testing decision (Holm or
    # Benjamini–Hochberg across segments, against policy.segments.tolerance): trusted here.
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
    yield from _noninferiority_findings(report, policy, level)


def _rule(policy: Policy, level: float) -> str:
    """The auto-promotion rule for segments, in one sentence."""
    tolerance = number(policy.segments.tolerance)
    return (
        "Auto-promotion needs proof that no judged segment is worse: on every judged segment, "
        f"the one-sided {_level(level)} confidence bound on each segment metric's change must "
        f"be better than -{tolerance} (the segment tolerance); not finding a regression is not "
        "enough."
    )


def _level(level: float) -> str:
    return f"{level * 100:.1f}".rstrip("0").rstrip(".") + "%"


@dataclass(frozen=True)
class Unproven:
    """A judged segment metric whose one-sided bound does not clear -tolerance."""

    segment: SegmentComparison
    metric: MetricComparison | None
    gain_bound: float


def noninferiority_bound(metric: MetricComparison, *, confidence: float) -> tuple[float, float]:
    """(one-sided lower confidence bound on the gain, the SE it used); NaN when unknown.

    The gain is the change in the good direction (delta, or -delta when lower is better).
    Without a stored SE it is recovered from the unadjusted two-sided interval.
    """
    se = metric.se
    if se is None or not math.isfinite(se):
        z_two = NormalDist().inv_cdf(0.5 + confidence / 2)
        se = (metric.ci_high - metric.ci_low) / (2 * z_two)
    gain = metric.delta if metric.higher_is_better else -metric.delta
    bound = gain - NormalDist().inv_cdf(confidence) * se
    return (bound if math.isfinite(bound) else math.nan), se


def rows_to_show_noninferiority(
    *, rows: int, gain: float, se: float, tolerance: float, confidence: float
) -> int | None:
    """Rows a segment would need for its bound to clear -tolerance if the change stayed as
    observed, with the SE scaling as 1/√n; None when no number of rows would do."""
    room = gain + tolerance
    if not (math.isfinite(room) and math.isfinite(se)) or room <= 0:
        return None
    return max(rows, math.ceil(rows * (NormalDist().inv_cdf(confidence) * se / room) ** 2))


def _unproven(report: EvaluationReport, policy: Policy, level: float) -> list[Unproven]:
    wanted = set(policy.segments.metrics or [policy.primary_metric])
    out = []
    for segment in report.segments:
        if segment.outcome in (Outcome.TOO_SMALL, Outcome.REGRESSED):
            continue
        judged = [m for m in segment.metrics if m.metric in wanted] or segment.metrics
        if not judged:
            out.append(Unproven(segment, None, math.nan))
            continue
        for metric in judged:
            bound, _ = noninferiority_bound(metric, confidence=level)
            if not bound > -policy.segments.tolerance:  # NaN fails too
                out.append(Unproven(segment, metric, bound))
    return out


def _unproven_reason(item: Unproven, policy: Policy, level: float) -> str:
    segment, metric = item.segment, item.metric
    if metric is None:
        name = segment_name(segment)
        return f"Segment {name} was judged but has no metric to show it is not worse."
    tolerance = policy.segments.tolerance
    ci = interval(metric.ci_low, metric.ci_high, confidence=level)
    label = metric_label(metric.metric)
    if not math.isfinite(item.gain_bound):
        return (
            f"Segment {segment_name(segment)}: {label} {signed(metric.delta)} has no usable "
            "interval, so it cannot be shown not worse."
        )
    # In the metric's own units: a lower bound when higher is better, an upper one otherwise.
    if metric.higher_is_better:
        bound = f"one-sided {_level(level)} lower bound {signed(item.gain_bound)}"
        limit = f"not above -{number(tolerance)}"
    else:
        bound = f"one-sided {_level(level)} upper bound {signed(-item.gain_bound)}"
        limit = f"not below +{number(tolerance)}"
    gain = metric.delta if metric.higher_is_better else -metric.delta
    _, se = noninferiority_bound(metric, confidence=level)
    needed = rows_to_show_noninferiority(
        rows=segment.rows, gain=gain, se=se, tolerance=tolerance, confidence=level
    )
    if needed is not None:
        more = (
            f"about {needed:,} rows (it has {segment.rows:,}) would show it if the change "
            "stayed as observed"
        )
    else:
        more = "more rows would not show it unless the true change is smaller than observed"
    return (
        f"Segment {segment_name(segment)} is not shown to be not worse: {label} "
        f"{signed(metric.delta)} (unadjusted {ci}; {bound}, {limit}); {more}."
    )


def _small_reason(segments: list[SegmentComparison], policy: Policy, *, blocking: bool) -> str:
    named = ", ".join(f"{segment_name(s)} ({s.rows:,} rows)" for s in segments[:10])
    more = f" and {len(segments) - 10:,} more" if len(segments) > 10 else ""
    minimum = f"under the minimum of {policy.segments.min_size:,} rows or "
    minimum += f"{policy.segments.min_positives:,} positives"
    if blocking:
        why = (
            "the policy needs them judged (segments.small: review)"
            if policy.segments.small == "review"
            else "they are listed as important (segments.important)"
        )
        return f"Too small to judge ({minimum}), and {why}: {named}{more}. A person must decide."
    return f"Too small to judge ({minimum}), not blocking auto-promotion: {named}{more}."


def _important_gaps(report: EvaluationReport, policy: Policy) -> Iterator[Finding]:
    present = {(s.column, s.value) for s in report.segments}
    columns = {s.column for s in report.segments}
    for entry in policy.segments.important:
        column, _, value = entry.partition("=")
        shown = truncate(entry, max_length=80)
        if column not in columns:
            yield Finding(
                Severity.REVIEW,
                f"Important segment {shown} is not among the evaluated segment columns.",
            )
        elif value and (column, value) not in present:
            yield Finding(
                Severity.REVIEW, f"Important segment {shown} has no rows in the benchmark."
            )


def _noninferiority_findings(
    report: EvaluationReport, policy: Policy, level: float
) -> Iterator[Finding]:
    unproven = _unproven(report, policy, level)
    small = [s for s in report.segments if s.outcome is Outcome.TOO_SMALL]
    blocking = [s for s in small if policy.segments.small_blocks(s.column, s.value)]
    passing_small = [s for s in small if not policy.segments.small_blocks(s.column, s.value)]
    gaps = list(_important_gaps(report, policy))
    if unproven or blocking or gaps:
        yield Finding(Severity.REVIEW, _rule(policy, level))
    unproven.sort(key=lambda item: _nan_last(item.gain_bound))
    for item in unproven[:MAX_SEGMENT_REASONS]:
        yield Finding(Severity.REVIEW, _unproven_reason(item, policy, level))
    hidden = len(unproven) - MAX_SEGMENT_REASONS
    if hidden > 0:
        yield Finding(
            Severity.REVIEW,
            f"{plural(hidden, 'more segment metric')} not shown to be not worse; see the "
            "segment table.",
        )
    if blocking:
        yield Finding(Severity.REVIEW, _small_reason(blocking, policy, blocking=True))
    yield from gaps
    regressed = any(s.outcome is Outcome.REGRESSED for s in report.segments)
    if not (unproven or regressed):
        judged = len(report.segments) - len(small)
        yield Finding(
            Severity.OK,
            f"Every judged segment is shown not worse ({judged:,} of "
            f"{len(report.segments):,} judged): each one-sided {_level(level)} lower bound on "
            f"the change lies above -{number(policy.segments.tolerance)}, the segment tolerance.",
        )
    if passing_small:
        yield Finding(Severity.OK, _small_reason(passing_small, policy, blocking=False))


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
    yield from judge_latency(section, policy=policy.latency)


def judge_latency(section: LatencySection, *, policy: LatencyPolicy) -> list[Finding]:
    """Single-row p99 and large-batch throughput, each judged by its confidence bounds."""
    return [_p99_finding(section, policy), _throughput_finding(section, policy)]


def _bounds_text(bounds: RatioBounds, level: float) -> str:
    return f"one-sided {_level(level)} bounds {bounds.low:.2f}× to {bounds.high:.2f}×"


def _too_noisy(what: str, bounds: RatioBounds, limit: float, level: float) -> Finding:
    return Finding(
        Severity.REVIEW,
        f"Latency could not be judged: too noisy. The {what} ratio is {bounds.ratio:.2f}× "
        f"({_bounds_text(bounds, level)}), on both sides of the {limit:.2f}× limit; "
        "comment /retest to measure again on a quieter machine.",
    )


def _p99_finding(section: LatencySection, policy: LatencyPolicy) -> Finding:
    bounds, level, limit = section.p99, section.confidence, policy.max_p99_ratio
    times = (
        f"{milliseconds(section.candidate.single_p99_ms)} ms vs "
        f"{milliseconds(section.baseline.single_p99_ms)} ms"
    )
    if bounds is None or section.candidate_p99_high_ms is None:
        return Finding(
            Severity.REVIEW,
            f"Latency could not be judged: p99 {times} was measured without rounds, so it has "
            "no confidence bounds.",
        )
    if not all(math.isfinite(v) for v in (bounds.low, bounds.high)):
        return Finding(Severity.REVIEW, f"Latency p99 ratio could not be computed ({times}).")
    if section.candidate_p99_high_ms <= policy.floor_ms:
        return Finding(
            Severity.OK,
            f"Latency p99 is {times}; the candidate's p99 per round is at most "
            f"{milliseconds(section.candidate_p99_high_ms)} ms (one-sided {_level(level)} "
            f"bound): under the {number(policy.floor_ms, decimals=1)} ms floor, fast enough "
            "whatever the ratio.",
        )
    if bounds.high <= limit:
        return Finding(
            Severity.OK,
            f"Latency p99 is {bounds.ratio:.2f}× production ({times}; "
            f"{_bounds_text(bounds, level)}), within the {limit:.2f}× limit.",
        )
    if bounds.low > limit:
        return Finding(
            _severity(bounds.low, limit),
            f"Latency p99 is {bounds.ratio:.2f}× production ({times}; "
            f"{_bounds_text(bounds, level)}), above the {limit:.2f}× limit.",
        )
    return _too_noisy("p99", bounds, limit, level)


def _throughput_finding(section: LatencySection, policy: LatencyPolicy) -> Finding:
    bounds, level = section.batch_time, section.confidence
    limit = policy.max_batch_ratio or policy.max_p99_ratio
    rows = f"{section.throughput_rows:,}-row batches" if section.throughput_rows else "batches"
    speeds = (
        f"{section.candidate.throughput_rows_per_s:,.0f} vs "
        f"{section.baseline.throughput_rows_per_s:,.0f} rows/s on {rows}"
    )
    if bounds is None or section.candidate_rows_per_s_low is None:
        return Finding(
            Severity.REVIEW,
            f"Throughput could not be judged: {speeds} was measured without rounds.",
        )
    if not all(math.isfinite(v) for v in (bounds.low, bounds.high)):
        return Finding(Severity.REVIEW, f"Throughput ratio could not be computed ({speeds}).")
    slower = f"batch time {bounds.ratio:.2f}× production's"
    if 0 < policy.min_rows_per_s <= section.candidate_rows_per_s_low:
        return Finding(
            Severity.OK,
            f"Throughput is {speeds} ({slower}; one-sided {_level(level)} lower bound "
            f"{section.candidate_rows_per_s_low:,.0f} rows/s): above the "
            f"{policy.min_rows_per_s:,.0f} rows/s floor, fast enough whatever the ratio.",
        )
    if bounds.high <= limit:
        return Finding(
            Severity.OK,
            f"Throughput is {speeds} ({slower}; {_bounds_text(bounds, level)}), within the "
            f"{limit:.2f}× limit.",
        )
    if bounds.low > limit:
        return Finding(
            _severity(bounds.low, limit),
            f"Throughput is {speeds}: batch time {bounds.ratio:.2f}× production's "
            f"({_bounds_text(bounds, level)}), above the {limit:.2f}× limit.",
        )
    return _too_noisy("batch time", bounds, limit, level)


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
