"""decide_canary: every rule, the reason people read first, the metric table, and the error
rate's honesty over a whole rollout's looks (a healthy canary is rarely rolled back; a bad one
is caught within its first step)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from evaluators.judgement.canary import (
    CanaryCheck,
    CanaryDecision,
    CanaryMove,
    Outcome,
    decide_canary,
    render_table,
)
from evaluators.policy import CanaryPolicy, parse_policy
from evaluators.statistics.canary_evidence import (
    BusinessReading,
    CanaryProgress,
    CanaryWindow,
    VariantReading,
    looks_planned,
    rate_rise,
)
from evaluators.statistics.shadow_evidence import LatencyQuantiles

POLICY = CanaryPolicy()  # 5 → 25 → 100 %, hold 60 min, bake 30, 500 requests, 3 failures
FAST = LatencyQuantiles(2.0, 4.0, 6.0)
SHADOW_SCORES = tuple(float(c) for c in (300, 300, 200, 200, 100) * 4)  # 4,400 scores


def reading(
    requests: float,
    errors: float,
    latency: LatencyQuantiles | None = FAST,
    scores: tuple[float, ...] | None = None,
) -> VariantReading:
    return VariantReading(requests=requests, errors=errors, latency_ms=latency, scores=scores)


def window(
    canary: VariantReading | None = None,
    production: VariantReading | None = None,
    business: tuple[BusinessReading, ...] = (),
) -> CanaryWindow:
    """A healthy window by default: 3,100 canary requests, 0.4% errors on both sides."""
    return CanaryWindow(
        canary=canary or reading(3_100, 12),
        production=production or reading(60_000, 240),
        business=business,
    )


def progress(**changes: Any) -> CanaryProgress:
    """A step that may move: held 60 min, 5,000 requests, production at 0.4% errors."""
    base = CanaryProgress(
        step_index=0,
        time_at_step=timedelta(minutes=60),
        step_requests=5_000,
        step_errors_production_rate=0.004,
        failures=0,
        without_data=timedelta(minutes=5),
        reference_scores=None,
    )
    return dataclasses.replace(base, **changes)


def decide(
    win: CanaryWindow | None = None,
    policy: CanaryPolicy = POLICY,
    **changes: Any,
) -> CanaryDecision:
    return decide_canary(
        policy=policy, progress=progress(**changes), window=window() if win is None else win
    )


def check(decision: CanaryDecision, name: str) -> CanaryCheck:
    return next(c for c in decision.checks if c.name == name)


# -- the path of a healthy canary --------------------------------------------------------------


def test_a_healthy_canary_advances_step_by_step_and_is_promoted_after_the_bake() -> None:
    first = decide()
    assert first.move is CanaryMove.ADVANCE
    assert first.reason == (
        "advancing from 5% to 25%: 60 of 60 min, 5,000 requests, every check passed"
    )
    assert first.had_data and first.failures == 0
    assert all(c.outcome in (Outcome.PASS, Outcome.NOT_MEASURED) for c in first.checks)
    assert decide(step_index=1).move is CanaryMove.ADVANCE
    baking = decide(step_index=2, time_at_step=timedelta(minutes=20))
    assert baking.move is CanaryMove.HOLD
    assert baking.reason == "holding at 100%: 20 of 30 min bake, 5,000 of 500 requests"
    promoted = decide(step_index=2, time_at_step=timedelta(minutes=30))
    assert promoted.move is CanaryMove.PROMOTE
    assert promoted.reason.startswith("promoting at 100%: baked 30 of 30 min")


def test_a_step_holds_until_its_hold_time_and_its_requests() -> None:
    early = decide(step_index=1, time_at_step=timedelta(minutes=12), step_requests=310)
    assert early.move is CanaryMove.HOLD
    assert early.reason == (
        "holding at 25%: 12 of 60 min, 310 of 500 requests, 1.6 of 10 expected errors"
    )
    assert early.had_data  # the window itself was judged
    assert decide(step_requests=499).move is CanaryMove.HOLD


def test_the_last_step_promotes_without_the_event_minimum() -> None:
    # At 100% production answers nothing since the step began: its rate is unknown.
    assert decide(step_index=2, step_errors_production_rate=None).move is CanaryMove.PROMOTE


def test_an_unknown_step_is_refused() -> None:
    with pytest.raises(ValueError):
        decide(step_index=3)


# -- error rate ---------------------------------------------------------------------------------


def test_a_significant_error_breach_rolls_back_at_once_leading_with_the_figures() -> None:
    bad = window(canary=reading(12_400, 285), production=reading(60_000, 240))
    decision = decide(bad, step_index=1, time_at_step=timedelta(minutes=3))
    assert decision.move is CanaryMove.ROLLBACK
    assert decision.reason.startswith("error 2.3% vs 0.4%, n=12,400")
    row = check(decision, "error rate")
    assert (row.canary, row.production, row.limit, row.outcome) == (
        "2.3% (285 of 12,400)",
        "0.4% (240 of 60,000)",
        "+0.5 pp",
        "breach",
    )
    assert decision.failures == 1


def test_an_excess_significant_in_one_window_only_is_counted_then_rolls_back_at_the_limit() -> None:
    # 25 errors in 1,000 against 1%: significant at 95% for this window, not across 30 looks.
    suspicious = window(canary=reading(1_000, 25), production=reading(20_000, 200))
    first = decide(suspicious)
    assert check(first, "error rate").outcome == Outcome.OUT_OF_TOLERANCE
    assert first.move is CanaryMove.HOLD and first.failures == 1
    assert first.reason.startswith("error 2.5% vs 1.0%, n=1,000: out of tolerance (1 of 3 ")
    second = decide(suspicious, failures=1)
    assert second.move is CanaryMove.HOLD and second.failures == 2
    third = decide(suspicious, failures=2)
    assert third.move is CanaryMove.ROLLBACK and third.failures == 3
    assert third.reason == ("error 2.5% vs 1.0%, n=1,000: out of tolerance in 3 analyses (limit 3)")


def test_failures_are_kept_for_the_rollout_a_passing_window_resets_nothing() -> None:
    passing = decide(failures=2)
    assert passing.move is CanaryMove.ADVANCE and passing.failures == 2
    assert decide(failures=2, step_index=1).failures == 2


def test_an_excess_within_noise_is_not_a_failure_but_does_not_pass() -> None:
    # One error among 25 requests is 4% against 1%: above the limit, but noise.
    noisy = window(canary=reading(25, 1), production=reading(20_000, 200))
    decision = decide(noisy)
    assert check(decision, "error rate").outcome == Outcome.INCONCLUSIVE
    assert decision.move is CanaryMove.HOLD and decision.failures == 0
    assert decision.reason.startswith("error 4.0% vs 1.0%, n=25: above the limit, not signif")


def test_a_healthy_canary_at_low_traffic_is_rarely_rolled_back_over_all_planned_looks() -> None:
    """25 requests a window at production's 1%: a rollback is a false alarm. Outcomes per error
    count come from decide_canary itself; rollouts are then simulated over the planned looks."""
    looks = looks_planned(POLICY)
    assert looks == 30
    outcome = {
        k: check(
            decide(window(canary=reading(25, k), production=reading(20_000, 200))), "error rate"
        ).outcome
        for k in range(26)
    }
    rng = np.random.default_rng(7)

    def rolled_back(rate: float, rollouts: int) -> float:
        errors = rng.binomial(25, rate, size=(rollouts, looks))
        breach = np.vectorize(lambda k: outcome[int(k)] == Outcome.BREACH)(errors)
        counted = np.vectorize(lambda k: outcome[int(k)] == Outcome.OUT_OF_TOLERANCE)(errors)
        failed = breach.any(axis=1) | (counted.sum(axis=1) >= POLICY.failure_limit)
        return float(failed.mean())

    assert rolled_back(0.01, 4_000) <= 0.05
    # A canary failing 15% of requests is caught within its first step's 12 looks.
    first_step = int(POLICY.hold_minutes / POLICY.analysis_interval_minutes)
    errors = rng.binomial(25, 0.15, size=(4_000, first_step))
    caught = np.vectorize(lambda k: outcome[int(k)] == Outcome.BREACH)(errors).any(axis=1)
    assert caught.mean() >= 0.95


def test_the_error_bound_is_exact_at_small_counts_and_wilson_like_at_large_ones() -> None:
    none_seen = rate_rise(errors=0, requests=25, base_errors=0, base_requests=25, confidence=0.95)
    assert none_seen.difference == 0 and none_seen.lower < 0
    big = rate_rise(
        errors=300, requests=10_000, base_errors=2_000, base_requests=100_000, confidence=0.975
    )
    # Against the Wald bound on this well-populated sample: within a tenth of a point.
    wald = 0.01 - 1.96 * np.sqrt(0.03 * 0.97 / 10_000 + 0.02 * 0.98 / 100_000)
    assert big.lower == pytest.approx(wald, abs=1e-3)


# -- latency ------------------------------------------------------------------------------------


def test_a_latency_breach_rolls_back_with_the_ratio_in_the_reason() -> None:
    slow = window(canary=reading(3_100, 12, LatencyQuantiles(2.0, 4.0, 41.0)))
    slow = dataclasses.replace(
        slow, production=reading(60_000, 240, LatencyQuantiles(2.0, 4.0, 12.0))
    )
    decision = decide(slow)
    assert decision.move is CanaryMove.ROLLBACK
    assert decision.reason.startswith("p99 41.0 ms vs 12.0 ms (3.4×, limit 1.25×), n=3,100")
    row = check(decision, "latency p99")
    assert (row.canary, row.production, row.limit, row.outcome) == (
        "41.0 ms",
        "12.0 ms",
        "≤ 1.25×",
        "breach",
    )


def test_a_slow_quantile_on_fewer_requests_is_out_of_tolerance_and_on_very_few_not_measured() -> (
    None
):
    slow = LatencyQuantiles(2.0, 4.0, 41.0)
    some = decide(window(canary=reading(800, 3, slow)))  # 8 beyond p99: measured, not breach
    assert check(some, "latency p99").outcome == Outcome.OUT_OF_TOLERANCE
    assert some.move is CanaryMove.HOLD and some.failures == 1
    few = decide(window(canary=reading(300, 1, slow)))  # 3 beyond p99: not measured
    row = check(few, "latency p99")
    assert row.outcome == Outcome.NOT_MEASURED
    assert row.note == "too few requests for a p99: 300 of 500"
    assert few.move is CanaryMove.ADVANCE  # shown, not blocking


def test_a_median_on_too_few_requests_is_no_data_and_never_lets_the_canary_step_up() -> None:
    # A slow canary at low traffic: 8 requests in the window, its median unseen.
    sparse = decide(window(canary=reading(8, 0, LatencyQuantiles(6.0, 9.0, 12.0))))
    row = check(sparse, "latency p50")
    assert (row.outcome, row.note) == (Outcome.NO_DATA, "too few requests for a p50: 8 of 10")
    assert sparse.move is CanaryMove.HOLD


def test_a_quantile_under_the_floor_is_fast_enough_whatever_the_ratio() -> None:
    policy = CanaryPolicy(latency={"floor_ms": 5.0})
    quick = window(canary=reading(3_100, 12, LatencyQuantiles(0.4, 1.0, 4.5)))
    quick = dataclasses.replace(
        quick, production=reading(60_000, 240, LatencyQuantiles(0.1, 0.2, 0.3))
    )
    assert decide(quick, policy=policy).move is CanaryMove.ADVANCE


def test_missing_latency_is_no_data_and_holds() -> None:
    decision = decide(window(canary=reading(3_100, 12, latency=None)))
    assert check(decision, "latency p50").outcome == Outcome.NO_DATA
    assert decision.move is CanaryMove.HOLD


# -- output distribution ------------------------------------------------------------------------


def test_output_psi_against_the_shadow_breaches_with_enough_scores() -> None:
    shifted = tuple(float(c) for c in (10, 10, 20, 60, 200) * 4)  # 1,200 scores, mass moved up
    decision = decide(
        window(canary=reading(1_200, 5, scores=shifted)), reference_scores=SHADOW_SCORES
    )
    assert decision.move is CanaryMove.ROLLBACK
    assert decision.reason.startswith("output PSI ")
    assert "vs the shadow's scores (limit 0.25), n=1,200" in decision.reason
    assert check(decision, "output PSI").outcome == Outcome.BREACH


def test_output_like_the_shadow_passes() -> None:
    same = tuple(c / 4 for c in SHADOW_SCORES)  # 1,100 scores, the same shape
    decision = decide(window(canary=reading(1_100, 4, scores=same)), reference_scores=SHADOW_SCORES)
    assert check(decision, "output PSI").outcome == Outcome.PASS
    assert decision.move is CanaryMove.ADVANCE


def test_without_a_shadow_distribution_the_output_is_not_measured_and_does_not_block() -> None:
    decision = decide(window(canary=reading(3_100, 12, scores=(1.0,) * 20)))
    row = check(decision, "output PSI")
    assert (row.outcome, row.note) == ("not measured", "no shadow distribution")
    assert decision.move is CanaryMove.ADVANCE
    assert "| not measured (no shadow distribution) |" in render_table(decision.checks)[-1]


def test_a_psi_from_a_handful_of_scores_is_noise_not_a_breach() -> None:
    handful = (0.0,) * 15 + (1.0, 1.0, 1.0, 1.0, 2.0)  # 6 scores: PSI far above 0.25
    decision = decide(window(canary=reading(6, 0, scores=handful)), reference_scores=SHADOW_SCORES)
    row = check(decision, "output PSI")
    assert row.outcome == Outcome.NOT_MEASURED and "within noise" in row.note
    assert decision.move is not CanaryMove.ROLLBACK


def test_a_canary_without_scores_when_the_shadow_had_them_holds() -> None:
    decision = decide(
        window(canary=reading(3_100, 12, scores=None)), reference_scores=SHADOW_SCORES
    )
    assert check(decision, "output PSI").outcome == Outcome.NO_DATA
    assert decision.move is CanaryMove.HOLD


# -- business metrics ---------------------------------------------------------------------------

BUSINESS = parse_policy(
    """
canary:
  business_metrics:
    - name: conversion
      query: 'sum(rate(orders_total{model="{model}",variant="{variant}"}[{window}]))'
      tolerance: 0.05
    - name: refund rate
      query: 'sum(rate(refunds_total{version="{version}"}[{window}]))'
      direction: lower_is_better
      tolerance: 0.10
"""
).canary


def business(
    conversion: tuple[float | None, float | None], refunds: tuple[float | None, float | None]
) -> CanaryWindow:
    return window(
        business=(
            BusinessReading("conversion", *conversion),
            BusinessReading("refund rate", *refunds),
        )
    )


@pytest.mark.parametrize(
    ("conversion", "refunds", "move", "lead"),
    [
        ((0.040, 0.040), (0.010, 0.010), CanaryMove.ADVANCE, "advancing"),
        ((0.039, 0.040), (0.0109, 0.010), CanaryMove.ADVANCE, "advancing"),
        (
            (0.031, 0.040),
            (0.010, 0.010),
            CanaryMove.ROLLBACK,
            "conversion 0.031 vs 0.04 (-22.5%, limit ≥ -5%), n=3,100",
        ),
        (
            (0.040, 0.040),
            (0.012, 0.010),
            CanaryMove.ROLLBACK,
            "refund rate 0.012 vs 0.01 (+20.0%, limit ≤ +10%), n=3,100",
        ),
        ((0.060, 0.040), (0.005, 0.010), CanaryMove.ADVANCE, "advancing"),
        ((None, 0.040), (0.010, 0.010), CanaryMove.HOLD, "conversion: no data"),
    ],
    ids=[
        "equal",
        "worse within tolerance",
        "higher-is-better fell beyond tolerance",
        "lower-is-better rose beyond tolerance",
        "both better",
        "no data for one side holds",
    ],
)
def test_business_metrics_are_judged_in_their_worse_direction(
    conversion: tuple[float | None, float | None],
    refunds: tuple[float | None, float | None],
    move: CanaryMove,
    lead: str,
) -> None:
    decision = decide(business(conversion, refunds), policy=BUSINESS)
    assert decision.move is move
    assert decision.reason.startswith(lead)


def test_a_business_metric_with_no_reading_at_all_is_no_data() -> None:
    decision = decide(window(), policy=BUSINESS)
    assert check(decision, "conversion").outcome == Outcome.NO_DATA
    assert decision.move is CanaryMove.HOLD


# -- no data ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "empty",
    [None, window(canary=reading(0, 0, latency=None))],
    ids=["no window", "no canary request in the window"],
)
def test_no_data_holds_then_pauses_at_the_maximum_hold(empty: CanaryWindow | None) -> None:
    def decide_empty(**changes: Any) -> CanaryDecision:
        return decide_canary(policy=POLICY, progress=progress(**changes), window=empty)

    held = decide_empty(without_data=timedelta(minutes=30), time_at_step=timedelta(minutes=30))
    assert held.move is CanaryMove.HOLD and not held.had_data
    assert held.reason.startswith("no canary traffic in the last 5 min; holding at 5%")
    assert all(c.outcome in ("no data", "not measured") for c in held.checks)
    assert check(held, "error rate").canary == "no data"  # never 0%
    paused = decide_empty(without_data=timedelta(hours=4), time_at_step=timedelta(hours=4))
    assert paused.move is CanaryMove.PAUSE
    assert paused.reason == "no canary traffic for 4.0 h"
    assert paused.failures == 0


def test_a_window_without_production_traffic_has_nothing_to_compare_with() -> None:
    alone = window(production=reading(0, 0, latency=None))
    held = decide(alone, without_data=timedelta(minutes=10))
    assert held.move is CanaryMove.HOLD and not held.had_data
    assert held.reason.startswith("no production traffic to compare with, n=3,100")
    paused = decide(alone, without_data=timedelta(hours=4))
    assert paused.move is CanaryMove.PAUSE
    assert paused.reason == "no production traffic to compare with for 4.0 h"


def test_a_canary_without_enough_requests_pauses_after_the_maximum_hold() -> None:
    trickle = window(canary=reading(40, 0))
    held = decide(trickle, time_at_step=timedelta(hours=3), step_requests=310)
    assert held.move is CanaryMove.HOLD
    paused = decide(trickle, time_at_step=timedelta(hours=4), step_requests=310)
    assert paused.move is CanaryMove.PAUSE
    assert paused.reason == "not enough canary requests at 5% after 4.0 h: 310 of 500"


def test_a_step_that_never_has_a_passing_window_pauses_after_the_maximum_hold() -> None:
    decision = decide(window(), policy=BUSINESS, time_at_step=timedelta(hours=5))
    assert decision.move is CanaryMove.PAUSE
    assert decision.reason.startswith("conversion: no data")


# -- rare outcomes ------------------------------------------------------------------------------


def test_min_events_holds_a_step_until_its_requests_could_show_the_errors() -> None:
    # 10 expected errors at max(0.1%, 0.5% tolerance) need 2,000 requests.
    policy = CanaryPolicy(min_events=10)
    short = decide(policy=policy, step_requests=1_500, step_errors_production_rate=0.001)
    assert short.move is CanaryMove.HOLD
    assert short.reason.endswith("7.5 of 10 expected errors")
    enough = decide(policy=policy, step_requests=2_000, step_errors_production_rate=0.001)
    assert enough.move is CanaryMove.ADVANCE
    unknown = decide(policy=policy, step_requests=9_000, step_errors_production_rate=None)
    assert unknown.move is CanaryMove.HOLD
    assert unknown.reason.endswith("production's error rate since the step began unknown")
    assert decide(policy=CanaryPolicy(min_events=0), step_requests=600).move is CanaryMove.ADVANCE


# -- the table ----------------------------------------------------------------------------------


def test_the_table_escapes_every_cell() -> None:
    hostile = CanaryCheck(
        name="x | y <img src=a> @org/team [link](http://e) `code` *bold*\nnext",
        canary="1 | 2",
        production="<b>",
        limit="≤ 1.25×",
        outcome="breach",
        note="a|b",
    )
    lines = render_table([hostile])
    assert lines[:2] == [
        "| check | canary | production | limit | outcome |",
        "|---|---|---|---|---|",
    ]
    row = lines[2]
    assert row.count(" | ") == 4  # five cells: no unescaped pipe splits one
    assert "<img" not in row and "<b>" not in row and "\n" not in row
    assert "@org" not in row  # mentions defanged
    assert "\\[link\\]" in row and "\\`code\\`" in row


def test_business_rows_appear_in_the_table_after_the_gateway_checks() -> None:
    decision = decide(business((0.04, 0.04), (0.01, 0.01)), policy=BUSINESS)
    lines = render_table(decision.checks)
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| error rate",
        "| latency p50",
        "| latency p95",
        "| latency p99",
        "| output PSI",
        "| conversion",
        "| refund rate",
    ]
    assert lines[-1] == "| refund rate | 0.01 | 0.01 | ≤ +10% | pass |"


@pytest.mark.parametrize(
    ("win", "changes"),
    [
        (window(canary=reading(3_100, float("nan"))), {}),
        (window(production=reading(60_000, float("inf"))), {}),
        (window(), {"step_requests": float("nan")}),
        (window(), {"step_errors_production_rate": float("nan")}),
        (window(canary=reading(3_100, 12, LatencyQuantiles(2.0, float("nan"), 6.0))), {}),
    ],
    ids=[
        "NaN canary errors",
        "infinite production errors",
        "NaN step requests",
        "NaN production rate since the step began",
        "a NaN latency quantile",
    ],
)
def test_an_unreadable_number_never_lets_a_canary_move(
    win: CanaryWindow, changes: dict[str, Any]
) -> None:
    decision = decide(win, **changes)
    assert decision.move is CanaryMove.HOLD
