"""The monitoring decision over windows: effect sizes judge, p-values never do; no shift
never alerts over many windows; a real shift alerts after k windows in a row and resolves
after k clean ones."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pytest

from evaluators.judgement.monitoring import (
    AlertEvent,
    AlertState,
    AlertStatus,
    Severity,
    Transition,
    WindowJudgement,
    judge_window,
    next_state,
)
from evaluators.policy import MonitoringPolicy, PolicyError, parse_policy
from evaluators.statistics.data_quality import data_quality
from evaluators.statistics.drift import MONITORING_CDF_POINTS, build_profile
from evaluators.statistics.drift_tests import score_profile, window_drift
from evaluators.statistics.monitoring_window import measure_window

POLICY = MonitoringPolicy()
PLANS = ["free", "pro", "team", "edu"]
PLAN_SHARES = [0.5, 0.3, 0.15, 0.05]


def _traffic(rng: np.random.Generator, n: int, *, shift: float = 0.0) -> pd.DataFrame:
    """`shift` moves the numeric features by that many standard deviations."""
    return pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n) * np.exp(0.5 * shift),
            "age": rng.normal(40, 12, n) + 12 * shift,
            "visits": rng.poisson(3, n).astype(float),
            "plan": rng.choice(PLANS, n, p=PLAN_SHARES),
        }
    )


REFERENCE = _traffic(np.random.default_rng(0), 100_000)
PROFILE = build_profile(REFERENCE, columns=list(REFERENCE), cdf_points=MONITORING_CDF_POINTS)
HISTORY = [5_000] * 24


def _judge(window: pd.DataFrame, *, history: list[int] = HISTORY) -> WindowJudgement:
    drift = window_drift(PROFILE, window)
    quality = data_quality(PROFILE, window, drift, history=history, min_history=6, keep=168)
    return judge_window(POLICY, drift=drift, quality=quality)


def _run(severities: Iterable[Severity], policy: MonitoringPolicy = POLICY) -> list[Transition]:
    state, found = AlertState(), []
    for severity in severities:
        transition = next_state(state, severity, policy)
        found.append(transition)
        state = transition.state
    return found


def test_no_shift_never_alerts_over_many_windows() -> None:
    """200 hourly windows of 5,000 rows drawn from the training distribution: no window even
    warns (false-alarm rate 0 of 200), so no alert is ever raised."""
    rng = np.random.default_rng(1)
    severities = [_judge(_traffic(rng, 5_000)).severity for _ in range(200)]
    assert severities.count(Severity.OK) == 200
    assert all(t.event is None for t in _run(severities))


def test_many_categories_and_heavy_tails_do_not_warn_on_noise_at_min_rows() -> None:
    """The features noise moves most — 50 Zipf-distributed categories, a lognormal with
    σ = 1.5 — over 100 unchanged windows of exactly `min_rows` rows: no warning."""
    rng = np.random.default_rng(12)
    cats = np.array([f"c{i}" for i in range(50)])
    zipf = 1 / np.arange(1, 51)
    zipf /= zipf.sum()

    def draw(n: int) -> pd.DataFrame:
        return pd.DataFrame({"c": rng.choice(cats, n, p=zipf), "x": rng.lognormal(0, 1.5, n)})

    profile = build_profile(draw(200_000), columns=["c", "x"], cdf_points=MONITORING_CDF_POINTS)
    worst = Severity.OK
    for _ in range(100):
        window = draw(POLICY.min_rows)
        drift = window_drift(profile, window)
        quality = data_quality(profile, window, drift, history=[], min_history=6, keep=168)
        worst = max(worst, judge_window(POLICY, drift=drift, quality=quality).severity)
    assert worst is Severity.OK


def test_volume_alone_never_alarms() -> None:
    """The issue's case: 50k rows, a tiny shift. KS calls it highly significant; the effect
    sizes see nothing, so the window is clean."""
    rng = np.random.default_rng(2)
    window = _traffic(rng, 50_000, shift=0.06)
    judged = _judge(window, history=[50_000] * 24)
    age = next(t for t in window_drift(PROFILE, window) if t.feature == "age")
    assert age.ks_p_value is not None and age.ks_p_value < 1e-9
    assert age.psi < 0.01
    assert age.wasserstein is not None and age.wasserstein.value < 0.1
    assert judged.severity is Severity.OK and judged.lines() == []


def test_a_real_shift_alerts_after_k_windows_and_resolves_after_k_clean_ones() -> None:
    rng = np.random.default_rng(3)
    drifted = [_judge(_traffic(rng, 5_000, shift=0.8)).severity for _ in range(4)]
    clean = [_judge(_traffic(rng, 5_000)).severity for _ in range(4)]
    assert set(drifted) == {Severity.CRITICAL} and set(clean) == {Severity.OK}
    events = [t.event for t in _run(drifted + clean)]
    assert events == [None, None, AlertEvent.RAISED, None, None, None, AlertEvent.RESOLVED, None]
    statuses = [t.state.status for t in _run(drifted + clean)]
    assert statuses[2] is AlertStatus.CRITICAL and statuses[-1] is AlertStatus.OK


def test_the_lines_name_the_feature_the_statistic_and_the_supporting_p_value() -> None:
    rng = np.random.default_rng(4)
    lines = _judge(_traffic(rng, 5_000, shift=0.8)).lines()
    assert any(
        line.startswith("Drift in age: PSI ") and "at or above 0.25 (KS " in line for line in lines
    )
    assert any(line.startswith("Drift in age: Wasserstein (σ) 0.8") for line in lines)


def test_a_moving_category_mix_is_judged_by_psi_and_jensen_shannon() -> None:
    rng = np.random.default_rng(5)
    window = _traffic(rng, 5_000)
    window["plan"] = rng.choice(PLANS, 5_000, p=[0.25, 0.3, 0.25, 0.2])
    judged = _judge(window)
    [plan] = [f for f in judged.features if f.feature == "plan"]
    assert plan.severity is Severity.CRITICAL
    assert {f.text.split(":")[1].split()[0] for f in plan.findings} == {"PSI", "Jensen-Shannon"}


def test_flickering_drift_never_reaches_k_in_a_row() -> None:
    flicker = [Severity.CRITICAL, Severity.OK] * 20
    assert all(t.event is None for t in _run(flicker))


def test_warning_then_critical_escalates_and_only_clean_windows_resolve() -> None:
    w, c, ok = Severity.WARNING, Severity.CRITICAL, Severity.OK
    transitions = _run([w, w, w, c, c, c, w, ok, ok, ok])
    events = [t.event for t in transitions]
    assert events[2] is AlertEvent.RAISED and transitions[2].state.status is AlertStatus.WARNING
    assert events[5] is AlertEvent.ESCALATED and transitions[5].state.status is AlertStatus.CRITICAL
    # A warning window does not de-escalate; three clean ones in a row resolve.
    assert transitions[6].state.status is AlertStatus.CRITICAL
    assert events[9] is AlertEvent.RESOLVED
    assert [e for e in events if e is not None] == [
        AlertEvent.RAISED,
        AlertEvent.ESCALATED,
        AlertEvent.RESOLVED,
    ]


def test_a_window_without_data_neither_raises_nor_resolves() -> None:
    c, ok, gap = Severity.CRITICAL, Severity.OK, Severity.NO_DATA
    # Bad windows on both sides of an outage still count as in a row …
    assert [t.event for t in _run([c, c, gap, c])][-1] is AlertEvent.RAISED
    # … but an outage is not a clean window: the clean run starts again after it.
    events = [t.event for t in _run([c, c, c, ok, ok, gap, ok, ok, ok])]
    assert events.count(AlertEvent.RESOLVED) == 1 and events[-1] is AlertEvent.RESOLVED
    assert all(t.event is None for t in _run([gap] * 10))


def test_a_window_with_too_few_rows_is_not_judged_but_its_volume_is() -> None:
    rng = np.random.default_rng(6)
    judged = _judge(_traffic(rng, 2_000, shift=3.0))
    assert judged.severity is Severity.NO_DATA
    assert judged.lines() == ["Traffic: 2,000 rows, 0.40× the usual 5,000."]


def test_k_comes_from_the_policy() -> None:
    policy = parse_policy("monitoring:\n  windows_to_alert: 1\n  windows_to_recover: 5\n")
    events = [t.event for t in _run([Severity.CRITICAL] + [Severity.OK] * 5, policy.monitoring)]
    assert events[0] is AlertEvent.RAISED and events.index(AlertEvent.RESOLVED) == 5


def test_a_missing_feature_is_critical_at_once_for_the_window() -> None:
    rng = np.random.default_rng(7)
    judged = _judge(_traffic(rng, 5_000).drop(columns=["plan"]))
    assert judged.severity is Severity.CRITICAL
    assert "1 features missing: plan." in judged.lines()


def test_prediction_drift_against_the_first_week_and_shadow_is_judged_by_its_own_thresholds() -> (
    None
):
    """One call measures the window: features, the score column against the model's first
    week and against its shadow run, and data quality."""
    rng = np.random.default_rng(8)
    references = {
        "the first week": score_profile(rng.beta(2, 5, 50_000)),
        "shadow": score_profile(rng.beta(3, 4, 50_000)),
    }
    window = _traffic(rng, 5_000)
    window["score"] = rng.beta(3, 4, 5_000)  # moved from the first week, as in shadow
    window["request_id"] = "r"
    found = measure_window(
        PROFILE,
        window,
        policy=POLICY,
        history=HISTORY,
        score_references=references,
        ignore=["request_id"],
    )
    assert not found.quality.schema.changed  # the score and request id are not features
    judged = judge_window(
        POLICY, drift=found.drift, quality=found.quality, predictions=found.predictions
    )
    week, shadow = judged.predictions
    assert week.severity is Severity.CRITICAL and shadow.severity is Severity.OK
    assert judged.severity is Severity.CRITICAL
    assert judged.lines()[0].startswith("Prediction drift against the first week: PSI ")
    lenient = parse_policy(
        "monitoring:\n  prediction_drift:\n    psi_warn: 5\n    psi_critical: 9\n"
        "    wasserstein_warn: 5\n    wasserstein_critical: 9\n"
    ).monitoring
    again = judge_window(
        lenient, drift=found.drift, quality=found.quality, predictions=found.predictions
    )
    assert again.severity is Severity.OK


def test_the_policy_defaults_read_as_the_issue_states_them() -> None:
    drift = POLICY.drift
    assert (drift.psi_warn, drift.psi_critical, drift.js_warn, drift.wasserstein_warn) == (
        0.1,
        0.25,
        0.1,
        0.1,
    )
    assert (POLICY.windows_to_alert, POLICY.windows_to_recover) == (3, 3)
    assert POLICY.interval_minutes == 60


@pytest.mark.parametrize(
    "text",
    [
        "monitoring:\n  drift:\n    psi_warn: 0.3\n    psi_critical: 0.2\n",
        "monitoring:\n  windows_to_alert: 0\n",
        "monitoring:\n  quality:\n    volume_low: 1.5\n",
        "monitoring:\n  unknown_setting: 1\n",
    ],
    ids=[
        "critical below warn is refused",
        "alerting after zero windows is refused",
        "a low-volume limit above the usual level is refused",
        "an unknown setting is refused",
    ],
)
def test_invalid_monitoring_policy_is_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(text)
