"""Samples shadow needs to detect the smallest flip-rate excess the policy cares about."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special  # ndtri: scipy.stats' normal quantile without its 1.5 s import


@dataclass(frozen=True)
class FlipRateSizing:
    """`samples` paired requests detect a flip rate of `detect` (limit `limit`)."""

    samples: int
    limit: float
    detect: float
    confidence: float
    power: float


def flip_rate_samples(*, limit: float, effect: float, confidence: float, power: float) -> int:
    """Paired requests for a one-sided test of "flip rate ≤ limit" to reject it with
    probability `power` when the true rate is limit + effect, at level 1 - confidence.

    One-sample test of a proportion, normal approximation (Chow, Shao & Wang, Sample Size
    Calculations in Clinical Research, 2nd ed., 2008, p. 85; Lachin, Controlled Clinical
    Trials 2:93-113, 1981):

        n = ( z(confidence)·√(p0(1-p0)) + z(power)·√(p1(1-p1)) )² / (p1 - p0)²

    with p0 = limit, p1 = limit + effect, rounded up. A limit of 0 (no flip allowed) leaves
    only the alternative's variance, as the formula says.
    """
    if not 0 < effect < 1 or not 0 <= limit < 1 or limit + effect >= 1:
        raise ValueError("need 0 <= limit, 0 < effect and limit + effect < 1")
    if not 0.5 <= confidence < 1 or not 0.5 <= power < 1:
        raise ValueError("confidence and power must be in [0.5, 1)")
    p0, p1 = limit, limit + effect
    z_alpha = float(special.ndtri(confidence))
    z_beta = float(special.ndtri(power))
    root = z_alpha * math.sqrt(p0 * (1 - p0)) + z_beta * math.sqrt(p1 * (1 - p1))
    # A hair under the integer (float noise in 190.0000001) must not add a whole sample.
    return max(1, math.ceil(root * root / (effect * effect) - 1e-9))


def size_flip_rate(
    *, limit: float, effect: float, confidence: float, power: float
) -> FlipRateSizing:
    """`flip_rate_samples` with what it was sized for, for the report's sentence. A limit so
    high that limit + effect reaches 100% has nothing to detect: no samples are added for it
    (the policy's own minimum still holds)."""
    if limit + effect >= 1:
        return FlipRateSizing(
            samples=0, limit=limit, detect=1.0, confidence=confidence, power=power
        )
    samples = flip_rate_samples(limit=limit, effect=effect, confidence=confidence, power=power)
    return FlipRateSizing(
        samples=samples, limit=limit, detect=limit + effect, confidence=confidence, power=power
    )
