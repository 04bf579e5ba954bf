"""One monitoring check's alert, as stored on the monitor row between windows, and its step.

The state machine itself is pure (`evaluators.judgement.monitoring.next_state`); this adds what
telling people needs: the episode number (one incident and one GitHub issue per episode), the
windows shown in the issue, whether the episode paged, and whether its latest change has been
handed to the outbox yet (`announce`: set in the transaction that records the window, cleared
once the effects are submitted, so a crash in between submits them again, never loses them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from evaluators.judgement.monitoring import (
    AlertEvent,
    AlertState,
    AlertStatus,
    Severity,
    next_state,
)
from evaluators.policy import MonitoringPolicy

MAX_HISTORY = 48  # windows kept per check (the issue shows the episode's, newest last)


@dataclass(frozen=True)
class WindowEntry:
    end: str  # ISO 8601, UTC
    severity: str  # Severity name, lower case
    line: str  # the worst finding, plain text ("" when clean)
    report_id: str | None


@dataclass(frozen=True)
class CheckState:
    status: AlertStatus = AlertStatus.OK
    bad_run: int = 0
    critical_run: int = 0
    clean_run: int = 0
    episode: int = 0  # numbered from 1; 0 while the check never alerted
    episode_started: str | None = None  # end of the first bad window of the episode
    resolved_at: str | None = None
    worst: AlertStatus = AlertStatus.OK  # the worst the episode reached
    paged: bool = False  # the episode reached critical: an incident is (or was) open
    announce: bool = False
    replaced_by: str | None = None  # resolved because this version replaced the model's
    history: tuple[WindowEntry, ...] = field(default_factory=tuple)

    @property
    def alert(self) -> AlertState:
        return AlertState(self.status, self.bad_run, self.critical_run, self.clean_run)

    def episode_windows(self) -> list[WindowEntry]:
        if self.episode_started is None:
            return []
        return [w for w in self.history if w.end >= self.episode_started]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"], data["worst"] = self.status.value, self.worst.value
        data["history"] = [asdict(entry) for entry in self.history]  # as JSON reads it back
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> CheckState:
        if not data:
            return cls()
        history = tuple(WindowEntry(**entry) for entry in data.get("history", ()))
        fields = {k: v for k, v in data.items() if k != "history"}
        fields["status"] = AlertStatus(fields.get("status", "ok"))
        fields["worst"] = AlertStatus(fields.get("worst", "ok"))
        return cls(**fields, history=history)


def step(
    state: CheckState,
    severity: Severity,
    *,
    line: str,
    end: datetime,
    report_id: str | None,
    policy: MonitoringPolicy,
) -> tuple[CheckState, AlertEvent | None]:
    """The check after one more judged window."""
    moved = next_state(state.alert, severity, policy)
    entry = WindowEntry(end.isoformat(), severity.name.lower(), line[:300], report_id)
    history = (*state.history, entry)[-MAX_HISTORY:]
    new = replace(
        state,
        status=moved.state.status,
        bad_run=moved.state.bad_run,
        critical_run=moved.state.critical_run,
        clean_run=moved.state.clean_run,
        history=history,
    )
    event = moved.event
    if event is AlertEvent.RAISED:
        # The episode starts with the run of bad windows that raised it.
        run = history[-min(moved.state.bad_run, len(history)) :]
        new = replace(
            new,
            episode=state.episode + 1,
            episode_started=run[0].end,
            resolved_at=None,
            worst=moved.state.status,
            paged=False,
            replaced_by=None,
        )
    elif event is AlertEvent.ESCALATED:
        new = replace(new, worst=moved.state.status)
    elif event is AlertEvent.RESOLVED:
        new = replace(new, resolved_at=entry.end)
    if new.status is AlertStatus.CRITICAL:
        new = replace(new, paged=True)
    # The issue shows every window of an open episode; a resolution closes it.
    if new.status is not AlertStatus.OK or event is AlertEvent.RESOLVED:
        new = replace(new, announce=True)
    return new, event


__all__ = ["MAX_HISTORY", "CheckState", "WindowEntry", "step"]
