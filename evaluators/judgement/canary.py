"""The canary decision: hold, advance, promote, roll back or pause, from one analysis window.

Each analysis compares the canary with production over the same window (statistics in
`evaluators.statistics.canary_evidence`). Every check has one outcome:

- `pass`: within its limit.
- `breach`: beyond its limit, and beyond noise across the rollout's planned looks → ROLLBACK at
  once. Error rate: the Newcombe lower bound of p_canary − p_production, at the per-look
  confidence that keeps `confidence` over every planned analysis, is above the tolerance.
  Latency: a quantile's ratio canary/production is above its maximum, the canary's quantile is
  above `floor_ms`, and both sides have at least 20 requests beyond the quantile (40 for p50,
  400 for p95, 2,000 for p99). Output: PSI against the candidate's shadow histogram is above
  `max_output_psi` and above what noise makes of that many rows. Business metric: its relative
  change in the worse direction is beyond its tolerance.
- `out of tolerance`: beyond the limit with weaker evidence: the error rate's lower bound is
  above the tolerance at `confidence` for this window alone but not across the planned looks;
  a latency ratio above its maximum with fewer requests than a breach needs (at least 5 beyond
  the quantile). It counts one failure for the analysis (several such checks in one analysis
  still count one); at `failure_limit` failures → ROLLBACK.
- `inconclusive`: the canary's error rate is above production's by more than the tolerance,
  but not significantly even for this window. Not a failure (a single error among 25 requests
  would otherwise count one in every few windows and roll back a healthy canary), but the
  window does not pass either.
- `no data`: nothing to judge (never zero, never a pass); the window does not pass. A p50
  with fewer than 5 requests beyond it on either side is no data: a canary never steps up with
  its median latency unseen.
- `not measured`: this check cannot be judged and says why in its note: no shadow
  distribution to compare the scores with, or too few requests for a p95 or p99 (fewer than 5
  beyond it) or for a PSI (where a PSI above the limit would still be noise). Shown, and not
  blocking: it would otherwise pause every low-traffic canary.

Failures are kept for the whole rollout: a passing analysis or a new step resets nothing
(Flagger counts per rollout too), so a canary that is intermittently worse is still caught.

The moves, in order of precedence:
1. No window, or no canary request in it: NO DATA. HOLD; PAUSE once `without_data` (which
   covers this window) reaches `max_hold_minutes`. The same when production had no request in
   the window (nothing to compare with), after any breach the canary's own data shows.
2. Any breach → ROLLBACK. Failures reaching `failure_limit` → ROLLBACK.
3. ADVANCE (not the last step) when every check passes or is not measured, the step has
   lasted `hold_minutes`, has `min_requests` canary requests, and, when `min_events` > 0,
   step_requests × max(production's error rate since the step began, tolerance) ≥
   `min_events` (an unknown production rate does not count). PROMOTE at the last step (100%)
   when every check passes, the step has lasted `bake_minutes` and has `min_requests`.
4. PAUSE when the step has lasted `max_hold_minutes` (or its hold or bake, if longer) without
   being able to move: not enough requests, or no passing window.
5. Otherwise HOLD, the reason saying what it waits for.

At the 100% step production answers nothing: the caller passes production's reading over a
reference window as `window.production` (the canary is compared with it), else the window has
no production data and the rollout holds, then pauses.

The reason leads with the figure that decided ("error 2.3% vs 0.4%, n=12,400 …"). Pure: the
same inputs give the same decision. Figures are plain text, escaped by `render_table` (and by
whoever shows the reason).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from evaluators.escaping import markdown
from evaluators.policy import BusinessMetric, CanaryPolicy, MetricDirection
from evaluators.statistics.canary_evidence import (
    CanaryProgress,
    CanaryWindow,
    VariantReading,
    expected_events,
    psi,
    psi_noise,
    psi_rows_needed,
    rate_rise,
    rollout_confidence,
)
from evaluators.wording import milliseconds


class Outcome(StrEnum):
    """A check's outcome (a `str`: `CanaryCheck.outcome == "pass"` holds)."""

    PASS = "pass"  # noqa: S105 (an outcome, not a password)
    BREACH = "breach"
    OUT_OF_TOLERANCE = "out of tolerance"
    INCONCLUSIVE = "inconclusive"
    NO_DATA = "no data"
    NOT_MEASURED = "not measured"


PASS = Outcome.PASS
BREACH = Outcome.BREACH
OUT_OF_TOLERANCE = Outcome.OUT_OF_TOLERANCE
INCONCLUSIVE = Outcome.INCONCLUSIVE
NO_DATA = Outcome.NO_DATA
NOT_MEASURED = Outcome.NOT_MEASURED
# Outcomes that keep a window from passing.
_BLOCKING = (BREACH, OUT_OF_TOLERANCE, INCONCLUSIVE, NO_DATA)

# Requests beyond a latency quantile for it to be measured at all, and to breach.
LATENCY_MEASURED_TAIL = 5
LATENCY_BREACH_TAIL = 20
_QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))

TABLE_HEADER = ("check", "canary", "production", "limit", "outcome")


class CanaryMove(StrEnum):
    HOLD = "hold"
    ADVANCE = "advance"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    PAUSE = "pause"


@dataclass(frozen=True)
class CanaryCheck:
    """One row of the metric table shown on the PR, the check run and Slack."""

    name: str  # "error rate", "latency p99", "output PSI", a business metric's name
    canary: str  # formatted figure, e.g. "2.3%"
    production: str
    limit: str  # e.g. "+0.5 pp", "≤ 1.25×"
    outcome: str  # an Outcome
    note: str = ""  # why, when the outcome needs it: "no shadow distribution", "3.4×"


@dataclass(frozen=True)
class CanaryDecision:
    move: CanaryMove
    failures: int  # the new count to store
    checks: tuple[CanaryCheck, ...]
    reason: str  # one line, leading with the figure that decided
    had_data: bool  # this window had enough data to judge (the caller resets without_data)


@dataclass(frozen=True)
class _Judged:
    check: CanaryCheck
    headline: str  # the figure that would lead the reason


# -- formatting ---------------------------------------------------------------------------------


def _rate(value: float) -> str:
    pct = value * 100
    if pct == 0:
        return "0%"
    return f"{pct:.1f}%" if pct >= 0.1 else f"{pct:.2g}%"


def _count(value: float) -> str:
    return f"{round(value):,}" if math.isfinite(value) else "—"


def _ratio(value: float) -> str:
    return f"{value:.2f}×" if value < 2 else f"{value:.1f}×"


def _figure(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def _duration(value: timedelta) -> str:
    minutes = value.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _minutes(value: float) -> str:
    return f"{value:g}"


def render_table(checks: Sequence[CanaryCheck]) -> list[str]:
    """The checks as GitHub Markdown table lines, every cell escaped."""
    lines = [
        "| " + " | ".join(TABLE_HEADER) + " |",
        "|" + "---|" * len(TABLE_HEADER),
    ]
    for check in checks:
        outcome = f"{check.outcome} ({check.note})" if check.note else check.outcome
        cells = (check.name, check.canary, check.production, check.limit, outcome)
        lines.append("| " + " | ".join(markdown(cell, max_length=120) for cell in cells) + " |")
    return lines


# -- the checks ---------------------------------------------------------------------------------


def _error_limit(policy: CanaryPolicy) -> str:
    return f"+{policy.error_rate.tolerance * 100:g} pp"


def _error_check(
    policy: CanaryPolicy, window: CanaryWindow, *, confidence: float, strict: float
) -> _Judged:
    canary, production = window.canary, window.production
    limit = _error_limit(policy)
    n = _count(canary.requests)
    if not production.requests > 0:
        row = CanaryCheck("error rate", "—", "no traffic", limit, NO_DATA, "nothing to compare")
        return _Judged(row, f"no production traffic to compare with, n={n}")
    counts = (canary.requests, canary.errors, production.requests, production.errors)
    if not all(math.isfinite(v) and v >= 0 for v in counts):
        row = CanaryCheck("error rate", "—", "—", limit, NO_DATA, "unreadable counts")
        return _Judged(row, f"error rate: unreadable counts, n={n}")
    nominal = rate_rise(
        errors=canary.errors,
        requests=canary.requests,
        base_errors=production.errors,
        base_requests=production.requests,
        confidence=confidence,
    )
    rollout = rate_rise(
        errors=canary.errors,
        requests=canary.requests,
        base_errors=production.errors,
        base_requests=production.requests,
        confidence=strict,
    )
    tolerance = policy.error_rate.tolerance
    canary_rate = min(max(canary.errors / canary.requests, 0.0), 1.0)
    production_rate = min(max(production.errors / production.requests, 0.0), 1.0)
    if rollout.lower > tolerance:
        outcome = BREACH
    elif nominal.lower > tolerance:
        outcome = OUT_OF_TOLERANCE
    elif nominal.difference > tolerance:
        outcome = INCONCLUSIVE
    else:
        outcome = PASS
    note = "" if outcome == PASS else f"{nominal.difference * 100:+.2g} pp"
    row = CanaryCheck(
        "error rate",
        f"{_rate(canary_rate)} ({_count(canary.errors)} of {n})",
        f"{_rate(production_rate)} ({_count(production.errors)} of {_count(production.requests)})",
        limit,
        outcome,
        note,
    )
    return _Judged(row, f"error {_rate(canary_rate)} vs {_rate(production_rate)}, n={n}")


def _latency_checks(policy: CanaryPolicy, window: CanaryWindow) -> list[_Judged]:
    canary, production = window.canary, window.production
    limits = policy.latency
    maxima = {"p50": limits.max_p50_ratio, "p95": limits.max_p95_ratio, "p99": limits.max_p99_ratio}
    judged = []
    for name, quantile in _QUANTILES:
        maximum = maxima[name]
        limit = f"≤ {maximum:g}×"
        c_ms = _quantile_ms(canary, name)
        p_ms = _quantile_ms(production, name)
        label = f"latency {name}"
        if c_ms is None or p_ms is None or p_ms <= 0:
            row = CanaryCheck(label, _ms_text(c_ms), _ms_text(p_ms), limit, NO_DATA)
            judged.append(_Judged(row, f"{name}: no latency data, n={_count(canary.requests)}"))
            continue
        ratio = c_ms / p_ms
        headline = (
            f"{name} {milliseconds(c_ms)} ms vs {milliseconds(p_ms)} ms ({_ratio(ratio)}, "
            f"limit {maximum:g}×), n={_count(canary.requests)}"
        )
        measured = math.ceil(LATENCY_MEASURED_TAIL / (1 - quantile) - 1e-9)
        breaching = math.ceil(LATENCY_BREACH_TAIL / (1 - quantile) - 1e-9)
        fewest = min(canary.requests, production.requests)
        if fewest < measured:
            # The median needs only a handful of requests: a window without them has no latency
            # evidence and does not pass (a canary must never step up with its latency unseen).
            # The tails need hundreds; at low traffic they are shown as not measured.
            outcome, note = (
                NO_DATA if name == "p50" else NOT_MEASURED,
                f"too few requests for a {name}: {_count(fewest)} of {measured:,}",
            )
        elif ratio <= maximum or c_ms <= limits.floor_ms:
            outcome, note = PASS, ""
        elif fewest >= breaching:
            outcome, note = BREACH, _ratio(ratio)
        else:
            outcome, note = (
                OUT_OF_TOLERANCE,
                f"{_ratio(ratio)}; {_count(fewest)} of {breaching:,} requests to breach",
            )
        row = CanaryCheck(label, _ms_text(c_ms), _ms_text(p_ms), limit, outcome, note)
        judged.append(_Judged(row, headline))
    return judged


def _quantile_ms(reading: VariantReading, name: str) -> float | None:
    if reading.latency_ms is None or not reading.requests > 0:
        return None
    value = float(getattr(reading.latency_ms, f"{name}_ms"))
    return value if math.isfinite(value) and value >= 0 else None


def _ms_text(value: float | None) -> str:
    return "—" if value is None else f"{milliseconds(value)} ms"


def _psi_check(
    policy: CanaryPolicy, window: CanaryWindow, progress: CanaryProgress, *, strict: float
) -> _Judged:
    limit_value = policy.max_output_psi
    limit = f"≤ {limit_value:g}"
    reference = progress.reference_scores
    scores = window.canary.scores
    n = _count(window.canary.requests)
    if reference is None or not sum(reference) > 0:
        row = CanaryCheck("output PSI", "—", "—", limit, NOT_MEASURED, "no shadow distribution")
        return _Judged(row, f"output PSI not measured (no shadow distribution), n={n}")
    if not all(math.isfinite(c) and c >= 0 for c in reference):
        row = CanaryCheck(
            "output PSI", "—", "—", limit, NOT_MEASURED, "unreadable shadow distribution"
        )
        return _Judged(row, f"output PSI not measured (unreadable shadow distribution), n={n}")
    reference_rows = sum(reference)
    shadow = f"shadow ({_count(reference_rows)} scores)"
    if scores is None or not sum(scores) > 0 or not all(math.isfinite(s) for s in scores):
        row = CanaryCheck("output PSI", "no scores", shadow, limit, NO_DATA)
        return _Judged(row, f"output PSI: no canary scores, n={n}")
    if len(scores) != len(reference):
        row = CanaryCheck(
            "output PSI", "—", shadow, limit, NOT_MEASURED, "score buckets differ from the shadow's"
        )
        return _Judged(row, f"output PSI not measured (buckets differ), n={n}")
    rows = sum(scores)
    value = psi(reference, scores)
    needed = psi_rows_needed(
        reference_rows=reference_rows, buckets=len(scores), limit=limit_value, confidence=strict
    )
    noise = psi_noise(
        rows=rows, reference_rows=reference_rows, buckets=len(scores), confidence=strict
    )
    if value > limit_value and value > noise:
        outcome, note = BREACH, ""
    elif value <= limit_value:
        outcome, note = PASS, ""
    else:
        wanted = "∞" if math.isinf(needed) else f"{math.ceil(needed):,}"
        outcome, note = NOT_MEASURED, f"within noise at {_count(rows)} scores; {wanted} needed"
    row = CanaryCheck(
        "output PSI", f"{value:.3f} ({_count(rows)} scores)", shadow, limit, outcome, note
    )
    return _Judged(
        row, f"output PSI {value:.3f} vs the shadow's scores (limit {limit_value:g}), n={n}"
    )


def _business_checks(policy: CanaryPolicy, window: CanaryWindow) -> list[_Judged]:
    readings = {reading.name: reading for reading in window.business}
    n = _count(window.canary.requests)
    judged = []
    for metric in policy.business_metrics:
        limit = _business_limit(metric)
        reading = readings.get(metric.name)
        canary = reading.canary if reading else None
        production = reading.production if reading else None
        if (
            canary is None
            or production is None
            or not (math.isfinite(canary) and math.isfinite(production))
        ):
            row = CanaryCheck(metric.name, _maybe(canary), _maybe(production), limit, NO_DATA)
            judged.append(_Judged(row, f"{metric.name}: no data, n={n}"))
            continue
        change = _relative_change(canary, production)
        worse = -change if metric.direction is MetricDirection.HIGHER_IS_BETTER else change
        outcome = BREACH if worse > metric.tolerance else PASS
        row = CanaryCheck(
            metric.name,
            _figure(canary),
            _figure(production),
            limit,
            outcome,
            "" if outcome == PASS else _change_text(change),
        )
        judged.append(
            _Judged(
                row,
                f"{metric.name} {_figure(canary)} vs {_figure(production)} "
                f"({_change_text(change)}, limit {limit}), n={n}",
            )
        )
    return judged


def _business_limit(metric: BusinessMetric) -> str:
    if metric.direction is MetricDirection.HIGHER_IS_BETTER:
        return f"≥ -{metric.tolerance * 100:g}%"
    return f"≤ +{metric.tolerance * 100:g}%"


def _relative_change(canary: float, production: float) -> float:
    if production == 0:
        # Any move away from zero is an unbounded relative change.
        return 0.0 if canary == 0 else math.copysign(math.inf, canary)
    return (canary - production) / abs(production)


def _change_text(change: float) -> str:
    if math.isinf(change):
        return "+∞%" if change > 0 else "-∞%"
    return f"{change * 100:+.1f}%"


def _maybe(value: float | None) -> str:
    return "no data" if value is None or not math.isfinite(value) else _figure(value)


def _no_data_checks(policy: CanaryPolicy, progress: CanaryProgress) -> list[CanaryCheck]:
    rows = [CanaryCheck("error rate", "no data", "—", _error_limit(policy), NO_DATA)]
    limits = policy.latency
    for name, maximum in (
        ("p50", limits.max_p50_ratio),
        ("p95", limits.max_p95_ratio),
        ("p99", limits.max_p99_ratio),
    ):
        rows.append(CanaryCheck(f"latency {name}", "no data", "—", f"≤ {maximum:g}×", NO_DATA))
    psi_limit = f"≤ {policy.max_output_psi:g}"
    if progress.reference_scores is None or not sum(progress.reference_scores) > 0:
        rows.append(
            CanaryCheck("output PSI", "—", "—", psi_limit, NOT_MEASURED, "no shadow distribution")
        )
    else:
        rows.append(CanaryCheck("output PSI", "no data", "—", psi_limit, NO_DATA))
    for metric in policy.business_metrics:
        rows.append(CanaryCheck(metric.name, "no data", "—", _business_limit(metric), NO_DATA))
    return rows


# -- the decision -------------------------------------------------------------------------------


def decide_canary(
    *,
    policy: CanaryPolicy,
    progress: CanaryProgress,
    window: CanaryWindow | None,
    confidence: float = 0.95,
) -> CanaryDecision:
    """Judge one analysis window of a rollout (rules in the module docstring)."""
    if not 0 <= progress.step_index < len(policy.steps):
        raise ValueError(f"step {progress.step_index} is not one of the policy's steps")
    if not 0.5 < confidence < 1:
        raise ValueError("confidence lies between 0.5 and 1")
    step = policy.steps[progress.step_index]
    last = progress.step_index == len(policy.steps) - 1
    pause_after = timedelta(
        minutes=max(policy.max_hold_minutes, policy.bake_minutes if last else policy.hold_minutes)
    )

    if window is None or not window.canary.requests > 0:
        checks = tuple(_no_data_checks(policy, progress))
        interval = _duration(timedelta(minutes=policy.analysis_interval_minutes))
        if progress.without_data >= timedelta(minutes=policy.max_hold_minutes):
            reason = f"no canary traffic for {_duration(progress.without_data)}"
            return CanaryDecision(CanaryMove.PAUSE, progress.failures, checks, reason, False)
        if progress.time_at_step >= pause_after:
            return _pause_for_time(policy, progress, step, checks, had_data=False)
        reason = (
            f"no canary traffic in the last {interval}; holding at {step}%: "
            f"{_waiting(policy, progress, last)}"
        )
        return CanaryDecision(CanaryMove.HOLD, progress.failures, checks, reason, False)

    strict = rollout_confidence(policy, confidence)
    judged = [
        _error_check(policy, window, confidence=confidence, strict=strict),
        *_latency_checks(policy, window),
        _psi_check(policy, window, progress, strict=strict),
        *_business_checks(policy, window),
    ]
    checks = tuple(j.check for j in judged)
    had_data = window.production.requests > 0

    breaches = [j for j in judged if j.check.outcome == BREACH]
    if breaches:
        first = breaches[0]
        reason = f"{first.headline}: {first.check.name} breached its limit"
        return CanaryDecision(CanaryMove.ROLLBACK, progress.failures + 1, checks, reason, had_data)

    out = [j for j in judged if j.check.outcome == OUT_OF_TOLERANCE]
    failures = progress.failures + (1 if out else 0)
    if out and failures >= policy.failure_limit:
        reason = (
            f"{out[0].headline}: out of tolerance in {failures} analyses "
            f"(limit {policy.failure_limit})"
        )
        return CanaryDecision(CanaryMove.ROLLBACK, failures, checks, reason, had_data)

    if not had_data and progress.without_data >= timedelta(minutes=policy.max_hold_minutes):
        reason = f"no production traffic to compare with for {_duration(progress.without_data)}"
        return CanaryDecision(CanaryMove.PAUSE, failures, checks, reason, False)

    blocking = [j for j in judged if j.check.outcome in _BLOCKING]
    if not blocking and _ready(policy, progress, last):
        move = CanaryMove.PROMOTE if last else CanaryMove.ADVANCE
        return CanaryDecision(move, failures, checks, _moving(policy, progress, last), had_data)
    if progress.time_at_step >= pause_after:
        return _pause_for_time(
            policy, progress, step, checks, had_data=had_data, failures=failures, judged=blocking
        )
    waiting = f"holding at {step}%: {_waiting(policy, progress, last)}"
    if blocking:
        first = blocking[0]
        what = {
            OUT_OF_TOLERANCE: f"out of tolerance ({failures} of {policy.failure_limit} allowed)",
            INCONCLUSIVE: "above the limit, not significantly",
        }.get(Outcome(first.check.outcome), "no data")
        reason = f"{first.headline}: {what}; {waiting}"
    else:
        reason = waiting
    return CanaryDecision(CanaryMove.HOLD, failures, checks, reason, had_data)


def _ready(policy: CanaryPolicy, progress: CanaryProgress, last: bool) -> bool:
    return not _missing(policy, progress, last)


def _missing(policy: CanaryPolicy, progress: CanaryProgress, last: bool) -> list[str]:
    """What the step still waits for, in words; empty when it may move."""
    minutes = progress.time_at_step.total_seconds() / 60
    needed = policy.bake_minutes if last else policy.hold_minutes
    missing = []
    if minutes < needed:
        missing.append("time")
    if not progress.step_requests >= policy.min_requests:  # NaN is not enough
        missing.append("requests")
    if not last and policy.min_events > 0:
        rate = progress.step_errors_production_rate
        if rate is None or not math.isfinite(rate):
            missing.append("production rate")
        elif not (
            expected_events(
                requests=progress.step_requests,
                production_rate=rate,
                tolerance=policy.error_rate.tolerance,
            )
            >= policy.min_events
        ):
            missing.append("events")
    return missing


def _waiting(policy: CanaryPolicy, progress: CanaryProgress, last: bool) -> str:
    minutes = progress.time_at_step.total_seconds() / 60
    needed = policy.bake_minutes if last else policy.hold_minutes
    parts = [
        f"{minutes:.0f} of {_minutes(needed)} min{' bake' if last else ''}",
        f"{_count(progress.step_requests)} of {policy.min_requests:,} requests",
    ]
    missing = _missing(policy, progress, last)
    if "production rate" in missing:
        parts.append("production's error rate since the step began unknown")
    elif "events" in missing:
        rate = progress.step_errors_production_rate or 0.0
        expected = expected_events(
            requests=progress.step_requests,
            production_rate=rate,
            tolerance=policy.error_rate.tolerance,
        )
        parts.append(f"{expected:.1f} of {policy.min_events:,} expected errors")
    return ", ".join(parts)


def _moving(policy: CanaryPolicy, progress: CanaryProgress, last: bool) -> str:
    step = policy.steps[progress.step_index]
    minutes = progress.time_at_step.total_seconds() / 60
    requests = f"{_count(progress.step_requests)} requests"
    if last:
        return (
            f"promoting at {step}%: baked {minutes:.0f} of {_minutes(policy.bake_minutes)} min, "
            f"{requests}, every check passed"
        )
    return (
        f"advancing from {step}% to {policy.steps[progress.step_index + 1]}%: "
        f"{minutes:.0f} of {_minutes(policy.hold_minutes)} min, {requests}, every check passed"
    )


def _pause_for_time(
    policy: CanaryPolicy,
    progress: CanaryProgress,
    step: int,
    checks: tuple[CanaryCheck, ...],
    *,
    had_data: bool,
    failures: int | None = None,
    judged: Sequence[_Judged] = (),
) -> CanaryDecision:
    held = _duration(progress.time_at_step)
    last = progress.step_index == len(policy.steps) - 1
    missing = _missing(policy, progress, last)
    if "requests" in missing:
        what = (
            f"not enough canary requests at {step}% after {held}: "
            f"{_count(progress.step_requests)} of {policy.min_requests:,}"
        )
    elif judged:
        what = f"{judged[0].headline}: held at {step}% for {held} without a passing analysis"
    else:
        what = f"held at {step}% for {held}: {_waiting(policy, progress, last)}"
    count = progress.failures if failures is None else failures
    return CanaryDecision(CanaryMove.PAUSE, count, checks, what, had_data)


__all__ = [
    "BREACH",
    "INCONCLUSIVE",
    "NOT_MEASURED",
    "NO_DATA",
    "OUT_OF_TOLERANCE",
    "PASS",
    "CanaryCheck",
    "CanaryDecision",
    "CanaryMove",
    "Outcome",
    "decide_canary",
    "render_table",
]
