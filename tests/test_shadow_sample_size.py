"""Samples needed to detect the policy's smallest flip-rate excess: textbook values, and the
power the formula promises checked against the exact binomial test."""

from __future__ import annotations

import pytest
from scipy import stats

from evaluators.statistics.sample_size import flip_rate_samples, size_flip_rate


def test_the_textbook_one_sided_example() -> None:
    # Chow, Shao & Wang (2008) p. 85 via powerandsamplesize.com: p0 0.02, p 0.05, α 0.05
    # one-sided, power 80% → 191.
    assert flip_rate_samples(limit=0.02, effect=0.03, confidence=0.95, power=0.8) == 191


def test_the_two_sided_worked_example() -> None:
    # p0 0.5 → p1 0.6 at α 0.05 two-sided (z 1.96, i.e. one-sided 97.5%), power 80% → 194.
    assert flip_rate_samples(limit=0.5, effect=0.1, confidence=0.975, power=0.8) == 194


def test_the_default_policy_needs_3118_samples_to_see_6_percent_against_5() -> None:
    sizing = size_flip_rate(limit=0.05, effect=0.01, confidence=0.95, power=0.8)
    assert sizing.samples == 3_118 and sizing.detect == pytest.approx(0.06)


@pytest.mark.parametrize(("limit", "effect"), [(0.05, 0.01), (0.02, 0.01), (0.1, 0.03)])
def test_the_exact_binomial_test_has_about_the_promised_power(limit: float, effect: float) -> None:
    n = flip_rate_samples(limit=limit, effect=effect, confidence=0.95, power=0.8)
    critical = stats.binom.ppf(0.95, n, limit) + 1  # reject "rate ≤ limit" from here up
    power = stats.binom.sf(critical - 1, n, limit + effect)
    assert 0.75 <= power <= 0.85
    smaller = stats.binom.sf(stats.binom.ppf(0.95, n // 2, limit), n // 2, limit + effect)
    assert smaller < 0.7


def test_more_power_or_confidence_or_a_smaller_effect_needs_more_samples() -> None:
    base = flip_rate_samples(limit=0.05, effect=0.01, confidence=0.95, power=0.8)
    assert flip_rate_samples(limit=0.05, effect=0.01, confidence=0.95, power=0.9) > base
    assert flip_rate_samples(limit=0.05, effect=0.01, confidence=0.99, power=0.8) > base
    assert flip_rate_samples(limit=0.05, effect=0.005, confidence=0.95, power=0.8) > base


def test_impossible_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        flip_rate_samples(limit=0.99, effect=0.02, confidence=0.95, power=0.8)
    with pytest.raises(ValueError):
        flip_rate_samples(limit=0.05, effect=0.0, confidence=0.95, power=0.8)
