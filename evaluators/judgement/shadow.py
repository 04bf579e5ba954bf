"""The shadow decision: pending, passed, failed or inconclusive, with the lines people read.

Rules (docs/shadow.md):
- anomalies (errors, NaN or out-of-range scores, a constant score) fail at any time;
- it passes only when ALL hold: duration ≥ minimum, paired requests ≥ max(min_samples, the
  samples that detect the policy's flip-rate effect), every required segment has its minimum,
  coverage ≥ min_coverage, latency was measured, and no finding fails or needs a person;
- it never passes early: before the minimum duration it is at best pending;
- at max_duration without all the evidence it is inconclusive (a person decides), never a pass;
- drift, flips and latency are judged by effect size once the evidence is complete; earlier
  they are shown as provisional.
Pure: same policy and evidence, same decision. Lines are plain text, one line each; values
that come from traffic or data are cut to one short line here and escaped where rendered.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np

from evaluators.judgement.verdict import GROSS_FACTOR
from evaluators.policy import Policy
from evaluators.statistics.paired_outputs import FlipRate, wilson_interval
from evaluators.statistics.sample_size import FlipRateSizing, size_flip_rate
from evaluators.statistics.shadow_evidence import (
    LatencyReading,
    NoData,
    SegmentCount,
    ShadowEvidence,
)
from evaluators.wording import confidence_label, milliseconds, number, percent, signed, truncate

# Beyond this many short segments or flagged features a line summarises the rest.
MAX_LISTED = 10


class ShadowStatus(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


# The check run's conclusion for each status; pending keeps the check in progress.
# Inconclusive needs a person: `action_required`, never `neutral` (neutral reads as a pass).
CHECK_CONCLUSIONS: dict[ShadowStatus, str | None] = {
    ShadowStatus.PENDING: None,
    ShadowStatus.PASSED: "success",
    ShadowStatus.FAILED: "failure",
    ShadowStatus.INCONCLUSIVE: "action_required",
}


class Severity(IntEnum):
    FAIL = 0
    REVIEW = 1
    WARN = 2
    OK = 3


@dataclass(frozen=True)
class Finding:
    severity: Severity
    text: str


@dataclass(frozen=True)
class ShadowDecision:
    status: ShadowStatus
    lines: list[str]
    samples_needed: int
    sizing: FlipRateSizing
    findings: list[str] = field(default_factory=list)  # what was found, failures first

    @property
    def conclusion(self) -> str | None:
        return CHECK_CONCLUSIONS[self.status]


def _hours(value: float) -> str:
    return f"{value:.1f} h" if value < 100 else f"{value:,.0f} h"


def _exceeds(count: int, total: int, limit: float, confidence: float) -> bool:
    """Shown above the limit: any occurrence when none is allowed, else the rate's lower
    confidence bound (Wilson) is above it, so a few early errors do not fail on noise alone."""
    if count == 0 or total == 0:
        return False
    if limit == 0:
        return True
    low, _ = wilson_interval(np.array([count]), np.array([total]), confidence=confidence)
    return bool(low[0] > limit)


def _anomalies(policy: Policy, evidence: ShadowEvidence) -> Iterator[Finding]:
    limits = policy.shadow.anomalies
    confidence = policy.statistics.confidence
    found = evidence.anomalies
    if _exceeds(found.errors, found.requests, limits.max_error_rate, confidence):
        yield Finding(
            Severity.FAIL,
            f"The shadow failed {found.errors:,} of {found.requests:,} requests "
            f"({percent(found.error_rate, decimals=2)}; allowed {percent(limits.max_error_rate)}).",
        )
    answered = found.requests - found.errors
    if _exceeds(found.invalid, answered, limits.max_invalid_output_rate, confidence):
        yield Finding(
            Severity.FAIL,
            f"The shadow returned {found.invalid:,} scores that are NaN, infinite or outside "
            f"[{number(limits.output_min, decimals=2)}, {number(limits.output_max, decimals=2)}] "
            f"(of {answered:,} answers).",
        )
    constant = (
        found.valid >= limits.constant_after
        and math.isfinite(found.spread)
        and found.spread <= limits.constant_spread
    )
    if constant and not found.production_spread <= limits.constant_spread:
        yield Finding(
            Severity.FAIL,
            f"The shadow returned the same score for all {found.valid:,} valid answers "
            "while production's scores varied.",
        )
    elif constant:
        yield Finding(
            Severity.WARN,
            "The shadow and production both returned one constant score: flips cannot be judged.",
        )


def _progress(
    policy: Policy, evidence: ShadowEvidence, needed: int, sizing: FlipRateSizing
) -> Iterator[tuple[bool, str]]:
    """(met, line) for every minimum that must hold before shadow can pass."""
    shadow = policy.shadow
    elapsed = evidence.elapsed.total_seconds() / 3600
    yield (
        elapsed >= shadow.min_duration_hours,
        f"Duration: {_hours(elapsed)} of the {_hours(shadow.min_duration_hours)} minimum.",
    )
    reason = (
        f"{sizing.samples:,} detect a flip rate of {percent(sizing.detect)} against the "
        f"{percent(sizing.limit)} limit at {percent(sizing.confidence, decimals=0)} confidence "
        f"with {percent(sizing.power, decimals=0)} power"
        if sizing.samples
        else f"the {percent(sizing.limit)} flip-rate limit leaves nothing to size for"
    )
    yield (
        evidence.paired >= needed,
        f"Samples: {evidence.paired:,} of {needed:,} paired requests needed "
        f"(policy minimum {shadow.min_samples:,}; {reason}).",
    )
    yield from _segment_progress(policy, evidence)
    coverage_ok = math.isfinite(evidence.coverage) and evidence.coverage >= shadow.min_coverage
    yield (
        coverage_ok,
        f"Mirror coverage: {percent(evidence.coverage, decimals=2)} of "
        f"{evidence.production_requests:,} production requests paired "
        f"(minimum {percent(shadow.min_coverage, decimals=2)}).",
    )
    if isinstance(evidence.latency, NoData) or not _latency_usable(evidence.latency):
        why = evidence.latency.reason if isinstance(evidence.latency, NoData) else "unusable"
        yield False, f"Latency: no data from the metrics source ({truncate(why, max_length=80)})."


def _segment_text(segment: SegmentCount) -> str:
    column = truncate(segment.column, max_length=40)
    return f"{column}={truncate(segment.value, max_length=40)} ({segment.samples:,})"


def _segment_progress(policy: Policy, evidence: ShadowEvidence) -> Iterator[tuple[bool, str]]:
    minimum = policy.shadow.segment_min_samples
    for column in evidence.missing_segment_columns:
        yield (
            False,
            f"Segment column {truncate(column, max_length=40)} is not in the logged features: "
            "its segments cannot be counted.",
        )
    short = [s for s in evidence.segments if s.samples < minimum]
    if not evidence.segments:
        return
    if not short:
        yield (
            True,
            f"Segments: all {len(evidence.segments):,} required segments have at least "
            f"{minimum:,} paired requests.",
        )
        return
    listed = ", ".join(_segment_text(s) for s in short[:MAX_LISTED])
    more = f" and {len(short) - MAX_LISTED:,} more" if len(short) > MAX_LISTED else ""
    yield (
        False,
        f"Segments below {minimum:,} paired requests: {listed}{more}.",
    )


def _latency_usable(reading: LatencyReading) -> bool:
    values = [
        reading.shadow.p50_ms,
        reading.shadow.p95_ms,
        reading.shadow.p99_ms,
        reading.production.p99_ms,
    ]
    return all(math.isfinite(v) and v >= 0 for v in values) and reading.production.p99_ms > 0


def _latency(policy: Policy, reading: LatencyReading) -> Finding:
    shadow, production = reading.shadow, reading.production
    ratio = shadow.p99_ms / production.p99_ms
    allowed = policy.shadow.max_latency_ratio
    text = (
        f"Latency p50/p95/p99: shadow {milliseconds(shadow.p50_ms)}/"
        f"{milliseconds(shadow.p95_ms)}/{milliseconds(shadow.p99_ms)} ms, production "
        f"{milliseconds(production.p50_ms)}/{milliseconds(production.p95_ms)}/"
        f"{milliseconds(production.p99_ms)} ms (p99 ratio {ratio:.2f}×, allowed {allowed:.2f}×)."
    )
    # Mirrored requests queue off the request path, so a slow p99 is for a person to weigh.
    return Finding(Severity.REVIEW if ratio > allowed else Severity.OK, text)


def _drift(policy: Policy, evidence: ShadowEvidence) -> Iterator[Finding]:
    limits = policy.shadow.drift
    flagged = sorted((d for d in evidence.drift if d.psi >= limits.psi_warn), key=lambda d: -d.psi)
    for item in flagged[:MAX_LISTED]:
        failing = item.psi >= limits.psi_fail
        ks = (
            f", KS {number(item.ks, decimals=3)}"
            if item.ks is not None and math.isfinite(item.ks)
            else ""
        )
        yield Finding(
            Severity.FAIL if failing else Severity.WARN,
            f"Input drift in {truncate(item.feature, max_length=60)}: PSI "
            f"{number(item.psi, decimals=3)}{ks} on {item.rows:,} requests "
            f"({'at or above' if failing else 'above the warning level but under'} the "
            f"{number(limits.psi_fail, decimals=2)} failure level).",
        )
    if len(flagged) > MAX_LISTED:
        worst = Severity.FAIL if flagged[MAX_LISTED].psi >= limits.psi_fail else Severity.WARN
        yield Finding(worst, f"Input drift in {len(flagged) - MAX_LISTED:,} more features.")
    if evidence.drift and not flagged:
        largest = max(evidence.drift, key=lambda d: d.psi)
        yield Finding(
            Severity.OK,
            f"No input drift: largest PSI {number(largest.psi, decimals=3)} "
            f"({truncate(largest.feature, max_length=60)}), under the "
            f"{number(limits.psi_warn, decimals=2)} warning level.",
        )


def _flip_text(rate: FlipRate) -> str:
    where = (
        "all requests"
        if rate.column is None
        else f"{truncate(rate.column, max_length=40)}={truncate(rate.value, max_length=40)}"
    )
    return (
        f"{percent(rate.rate, decimals=2)} of {rate.pairs:,} decisions flip at threshold "
        f"{number(rate.threshold, decimals=2)} ({where})"
    )


def _flip_severity(low: float, limit: float) -> Severity:
    """Shown above the limit: a person weighs it (a better model moves decisions too), as the
    verdict does with a benchmark threshold shift; shown above GROSS_FACTOR times it: fails."""
    if low > GROSS_FACTOR * limit:
        return Severity.FAIL
    return Severity.REVIEW if low > limit else Severity.OK


def _flips(policy: Policy, evidence: ShadowEvidence) -> Iterator[Finding]:
    """Overall rates at the policy's confidence; segment rates Bonferroni-adjusted over the
    segments big enough to judge, so many segments do not make a false alarm likely."""
    limit = policy.shadow_max_flip_rate()
    confidence = policy.statistics.confidence
    overall = [r for r in evidence.outputs.flips if r.column is None and r.pairs]
    segments = [
        r
        for r in evidence.outputs.flips
        if r.column is not None and r.pairs >= max(policy.shadow.segment_min_samples, 1)
    ]
    adjusted = 1 - (1 - confidence) / max(len(segments), 1)
    for rate in overall:
        yield Finding(
            _flip_severity(rate.low, limit),
            f"Flips: {_flip_text(rate)}; {confidence_label(confidence)} "
            f"{percent(rate.low, decimals=2)} to {percent(rate.high, decimals=2)} "
            f"(limit {percent(limit)}).",
        )
    if segments:
        lows, _ = wilson_interval(
            np.array([r.flips for r in segments]),
            np.array([r.pairs for r in segments]),
            confidence=adjusted,
        )
        above = [(r, low) for r, low in zip(segments, lows, strict=True) if low > limit]
        for rate, low in above[:MAX_LISTED]:
            yield Finding(
                _flip_severity(float(low), limit),
                f"Flips in a segment: {_flip_text(rate)} (limit {percent(limit)}).",
            )
        if len(above) > MAX_LISTED:
            worst = min(_flip_severity(float(low), limit) for _, low in above[MAX_LISTED:])
            yield Finding(
                worst, f"Flips above the limit in {len(above) - MAX_LISTED:,} more segments."
            )


def _outputs(policy: Policy, evidence: ShadowEvidence) -> Iterator[Finding]:
    outputs = evidence.outputs
    if math.isfinite(outputs.spearman):
        yield Finding(
            Severity.OK,
            f"Rank correlation with production (Spearman): {number(outputs.spearman, decimals=3)} "
            f"over {outputs.pairs:,} paired requests.",
        )
    shift = outputs.shift
    if math.isfinite(shift.mean):
        ci = (
            f" ({confidence_label(policy.statistics.confidence)} {signed(shift.low)} to "
            f"{signed(shift.high)})"
            if math.isfinite(shift.low)
            else ""
        )
        yield Finding(
            Severity.OK, f"Mean score shift (shadow - production): {signed(shift.mean)}{ci}."
        )


def _judged(policy: Policy, evidence: ShadowEvidence) -> list[Finding]:
    findings = [*_flips(policy, evidence), *_drift(policy, evidence)]
    if isinstance(evidence.latency, LatencyReading) and _latency_usable(evidence.latency):
        findings.append(_latency(policy, evidence.latency))
    findings.extend(_outputs(policy, evidence))
    return findings


def decide_shadow(*, policy: Policy, evidence: ShadowEvidence) -> ShadowDecision:
    """Judge shadow's evidence so far against the policy (rules in the module docstring)."""
    shadow = policy.shadow
    sizing = size_flip_rate(
        limit=policy.shadow_max_flip_rate(),
        effect=shadow.flip_rate_effect,
        confidence=policy.statistics.confidence,
        power=shadow.power,
    )
    needed = max(shadow.min_samples, sizing.samples)
    anomalies = list(_anomalies(policy, evidence))
    progress = list(_progress(policy, evidence, needed, sizing))
    complete = all(met for met, _ in progress)
    findings = anomalies + _judged(policy, evidence)
    findings.sort(key=lambda f: f.severity)  # stable: failures first, then in check order
    worst = findings[0].severity if findings else Severity.OK
    progress_lines = [line for _, line in progress]
    finding_lines = [f.text for f in findings]

    if any(f.severity is Severity.FAIL for f in anomalies):
        status = ShadowStatus.FAILED
        head = "Shadow failed: the candidate's answers are anomalous."
    elif complete and worst is Severity.FAIL:
        status = ShadowStatus.FAILED
        head = "Shadow failed."
    elif complete and worst is Severity.REVIEW:
        status = ShadowStatus.INCONCLUSIVE
        head = "Shadow needs a person: a finding is for someone to weigh."
    elif complete:
        status = ShadowStatus.PASSED
        head = "Shadow passed: every minimum is met and no finding fails."
    elif evidence.elapsed.total_seconds() / 3600 >= shadow.max_duration_hours:
        status = ShadowStatus.INCONCLUSIVE
        head = (
            f"Shadow is inconclusive: the {_hours(shadow.max_duration_hours)} maximum passed "
            "without enough evidence; a person decides."
        )
    else:
        status = ShadowStatus.PENDING
        head = "Shadow is collecting evidence; findings so far are provisional."
    return ShadowDecision(
        status=status,
        lines=[head, *progress_lines, *finding_lines],
        samples_needed=needed,
        sizing=sizing,
        findings=[f.text for f in findings if f.severity is not Severity.OK],
    )
