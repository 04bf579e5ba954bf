"""A monitoring check between windows: episodes (one incident and one issue each), what the
issue shows, when people must be told again, and which windows a visit judges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.monitoring.check_state import CheckState, step
from bot.monitoring.monitor_check import MAX_WINDOWS_PER_VISIT, plan_windows
from evaluators.judgement.monitoring import AlertEvent, AlertStatus, Severity
from evaluators.policy import MonitoringPolicy

POLICY = MonitoringPolicy(windows_to_alert=3, windows_to_recover=2)
T0 = datetime(2026, 12, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def run(
    severities: list[Severity], state: CheckState | None = None, *, after: int = 0
) -> tuple[CheckState, list]:
    state = state or CheckState()
    events = []
    for i, severity in enumerate(severities):
        state, event = step(
            state,
            severity,
            line=f"window {i}: {severity.name}",
            end=T0 + (after + i + 1) * HOUR,
            report_id=f"r{i}",
            policy=POLICY,
        )
        state = CheckState.from_json(state.to_json())  # as the row stores it
        events.append(event)
    return state, events


def test_clean_windows_never_open_an_episode_or_ask_to_tell_anyone() -> None:
    state, events = run([Severity.OK] * 200)
    assert events == [None] * 200
    assert state.episode == 0 and not state.announce and not state.paged


def test_an_episode_starts_with_its_run_of_bad_windows_and_ends_after_clean_ones() -> None:
    OK, WARN, CRIT = Severity.OK, Severity.WARNING, Severity.CRITICAL
    state, events = run([OK, WARN, OK, WARN, WARN, CRIT, CRIT, CRIT, OK, OK])
    assert events == [None] * 4 + [None, AlertEvent.RAISED, None, AlertEvent.ESCALATED] + [
        None,
        AlertEvent.RESOLVED,
    ]
    assert state.status is AlertStatus.OK and state.worst is AlertStatus.CRITICAL
    assert state.episode == 1 and state.paged and state.announce
    shown = [w.line for w in state.episode_windows()]
    # The episode begins at the first window of the bad run that raised it (window 3).
    assert shown[0] == "window 3: WARNING" and shown[-1] == "window 9: OK"
    assert state.resolved_at == (T0 + 10 * HOUR).isoformat()


def test_a_second_episode_gets_a_new_number_and_is_paged_anew() -> None:
    CRIT, OK = Severity.CRITICAL, Severity.OK
    first, _ = run([CRIT] * 3 + [OK] * 2)
    again, events = run([CRIT] * 3, first, after=5)
    assert events[-1] is AlertEvent.RAISED
    assert again.episode == 2 and again.paged and again.status is AlertStatus.CRITICAL
    assert all(w.severity == "critical" for w in again.episode_windows())


def test_windows_without_data_neither_raise_nor_resolve() -> None:
    NO, CRIT = Severity.NO_DATA, Severity.CRITICAL
    state, events = run([CRIT, CRIT, CRIT] + [NO] * 20)
    assert events[2] is AlertEvent.RAISED and set(events[3:]) == {None}
    assert state.status is AlertStatus.CRITICAL


def test_a_visit_judges_every_ended_window_oldest_first_and_skips_what_is_too_old() -> None:
    grace = timedelta(minutes=2)
    plan = plan_windows(T0, T0 + 3 * HOUR + grace, length=HOUR, grace=grace)
    assert plan.windows == [(T0 + i * HOUR, T0 + (i + 1) * HOUR) for i in range(3)]
    assert (
        plan_windows(T0, T0 + HOUR + grace - timedelta(seconds=1), length=HOUR, grace=grace).windows
        == []
    )
    away = plan_windows(T0, T0 + 100 * HOUR, length=HOUR, grace=grace)
    assert away.skipped == 99 - MAX_WINDOWS_PER_VISIT
    assert len(away.windows) == MAX_WINDOWS_PER_VISIT
    assert away.windows[-1][1] == T0 + 99 * HOUR
