"""What one canary analysis measured, and the statistics that judge it.

The readings are plain data the rollout gathers from its metrics source: the canary and
production over the same analysis window, the team's business metrics, and where the rollout
stands (step, time, requests, failures so far). `None` is always "no data", never zero.

The statistics, chosen for honest evidence at the small counts an early canary step produces:

- **Error rate**: the one-sided lower confidence bound of p_canary − p_production by Newcombe's
  hybrid method (Newcombe 1998), which combines one confidence bound per rate. Unlike the Wald
  z-test it does not collapse when a side has no errors at all (the usual case for a healthy
  model). The single-rate bounds are exact (Clopper-Pearson) rather than Wilson's: that is the
  continuity care, since Wilson's lower bound is too high at a handful of errors, exactly where
  an early 5% step lives; at large counts the two agree.
- **Output distribution**: the population stability index of the canary's score histogram
  against the candidate's own shadow histogram, every bucket smoothed by half a count (Jeffreys)
  so an empty bucket is not log(0). Between two samples from one distribution, PSI (the
  symmetric Kullback-Leibler divergence) is about (1/n + 1/m)·χ²(buckets − 1); the same
  approximation tells how many scored rows make a PSI above the limit more than noise.
- **Repeated looks**: a rollout analyses every few minutes, so a test at 95% per look would
  roll back a healthy canary once in every ~20 looks. `looks_planned` counts the analyses the
  policy plans (holds of every step but the last, plus the bake, divided by the interval) and
  `rollout_confidence` spreads the error rate 1 − confidence evenly over them (Bonferroni), so
  the chance that any planned look calls a false breach stays within 1 − confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from scipy import special  # ndtri, chdtri: the quantiles without scipy.stats' slow import

from evaluators.policy import CanaryPolicy
from evaluators.statistics.shadow_evidence import LatencyQuantiles

# Half a count per bucket on both sides before PSI (Jeffreys' prior for a multinomial).
PSI_PSEUDO_COUNT = 0.5


@dataclass(frozen=True)
class VariantReading:
    """One variant over one analysis window."""

    requests: float
    errors: float
    latency_ms: LatencyQuantiles | None  # None: no latency data
    scores: tuple[float, ...] | None  # non-cumulative counts per score bucket; None: no data


@dataclass(frozen=True)
class BusinessReading:
    name: str
    canary: float | None  # None: no data
    production: float | None


@dataclass(frozen=True)
class CanaryWindow:
    """The canary and production over the same window (at the 100% step production answers
    nothing: the caller passes production's reading over a reference window instead)."""

    canary: VariantReading
    production: VariantReading
    business: tuple[BusinessReading, ...] = ()


@dataclass(frozen=True)
class CanaryProgress:
    step_index: int  # index into policy.steps
    time_at_step: timedelta  # since the current step began
    step_requests: float  # canary requests since the step began
    step_errors_production_rate: float | None  # production's error rate since the step began
    failures: int  # analyses out of tolerance so far in this rollout
    # Since the last analysis that had enough data (or the step start), up to now: it already
    # covers the window being analysed.
    without_data: timedelta
    reference_scores: tuple[float, ...] | None  # the candidate's shadow score histogram (counts)


@dataclass(frozen=True)
class DifferenceBound:
    """The observed rise p_canary − p_production and its one-sided lower confidence bound."""

    difference: float
    lower: float


def exact_bounds(successes: float, trials: float, *, confidence: float) -> tuple[float, float]:
    """One-sided Clopper-Pearson bounds: each holds alone with probability `confidence`.

    Counts read from Prometheus are extrapolated (not whole): the beta quantiles take them as
    they are, which interpolates between the neighbouring whole counts.
    """
    x = min(max(successes, 0.0), trials)
    alpha = 1 - confidence
    lower = 0.0 if x <= 0 else float(special.betaincinv(x, trials - x + 1, alpha))
    upper = 1.0 if x >= trials else float(special.betaincinv(x + 1, trials - x, 1 - alpha))
    return lower, upper


def rate_rise(
    *, errors: float, requests: float, base_errors: float, base_requests: float, confidence: float
) -> DifferenceBound:
    """Newcombe's hybrid lower bound of p1 − p2 at one-sided `confidence`, built from exact
    single-rate bounds: lower = d − √((p1 − l1)² + (u2 − p2)²).

    Exact (Clopper-Pearson) components instead of Newcombe's Wilson ones are the continuity
    care: with a handful of errors the Wilson lower bound sits too high (2 errors in 25 at a 1%
    baseline would be "significant" in 2.6% of a healthy canary's windows), and a rollout looks
    dozens of times. The bound is conservative where counts are small and close to Wilson's
    where they are large.
    """
    if requests <= 0 or base_requests <= 0:
        raise ValueError("both sides need requests")
    p1 = min(max(errors / requests, 0.0), 1.0)
    p2 = min(max(base_errors / base_requests, 0.0), 1.0)
    l1, _ = exact_bounds(p1 * requests, requests, confidence=confidence)
    _, u2 = exact_bounds(p2 * base_requests, base_requests, confidence=confidence)
    difference = p1 - p2
    return DifferenceBound(difference, difference - math.hypot(p1 - l1, u2 - p2))


def looks_planned(policy: CanaryPolicy) -> int:
    """Analyses a rollout plans: every step's hold but the last, the bake, per interval."""
    minutes = policy.hold_minutes * (len(policy.steps) - 1) + policy.bake_minutes
    return max(1, math.ceil(minutes / policy.analysis_interval_minutes))


def rollout_confidence(policy: CanaryPolicy, confidence: float) -> float:
    """The per-look confidence that keeps `confidence` over all planned looks (Bonferroni)."""
    return 1 - (1 - confidence) / looks_planned(policy)


def smoothed_shares(counts: tuple[float, ...]) -> list[float]:
    padded = [max(c, 0.0) + PSI_PSEUDO_COUNT for c in counts]
    total = sum(padded)
    return [c / total for c in padded]


def psi(reference: tuple[float, ...], actual: tuple[float, ...]) -> float:
    """Population stability index Σ (a − e)·ln(a / e) over smoothed bucket shares."""
    if len(reference) != len(actual):
        raise ValueError("the histograms have different buckets")
    expected, observed = smoothed_shares(reference), smoothed_shares(actual)
    return sum((a - e) * math.log(a / e) for a, e in zip(observed, expected, strict=True))


def _psi_critical(buckets: int, confidence: float) -> float:
    return float(special.chdtri(max(buckets - 1, 1), 1 - confidence))


def psi_noise(*, rows: float, reference_rows: float, buckets: int, confidence: float) -> float:
    """The PSI that two samples of one distribution stay under with probability `confidence`:
    under no change PSI ≈ (1/n + 1/m)·χ²(buckets − 1)."""
    return (1 / rows + 1 / reference_rows) * _psi_critical(buckets, confidence)


def psi_rows_needed(
    *, reference_rows: float, buckets: int, limit: float, confidence: float
) -> float:
    """Scored canary rows from which a PSI above `limit` is beyond noise at `confidence`;
    infinite when the reference is too small for that at any number of rows."""
    room = limit / _psi_critical(buckets, confidence) - 1 / reference_rows
    return math.inf if room <= 0 else 1 / room


def expected_events(*, requests: float, production_rate: float, tolerance: float) -> float:
    """Errors a step's requests would show at the larger of production's rate and the
    tolerance: below `min_events` a clean error rate is not evidence of a rare outcome."""
    return requests * max(production_rate, tolerance)


__all__ = [
    "BusinessReading",
    "CanaryProgress",
    "CanaryWindow",
    "DifferenceBound",
    "VariantReading",
    "exact_bounds",
    "expected_events",
    "looks_planned",
    "psi",
    "psi_noise",
    "psi_rows_needed",
    "rate_rise",
    "rollout_confidence",
]
