"""What `/status` and `shipyard monitor <model>` show of production monitoring: per monitored
version, each check's alert and the last window judged (plain text: escaped where shown)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.monitoring.check_state import CheckState
from bot.store.models import ProductionMonitor
from evaluators.judgement.monitoring import AlertStatus, Check


@dataclass(frozen=True)
class CheckSeen:
    check: str
    status: str  # ok | warning | critical
    since: str | None  # the episode's start while alerting
    episode: int
    bad_run: int
    clean_run: int


@dataclass(frozen=True)
class MonitorSeen:
    repository: str
    model: str
    version: str
    status: str  # watching | replaced
    pr_number: int
    promoted_at: datetime
    window_end: datetime
    last_severity: str | None
    last_report_id: str | None
    checks: tuple[CheckSeen, ...]
    lines: tuple[str, ...]

    def summary(self) -> str:
        """ "churn v-1a2b: feature drift critical since …, prediction drift ok, …"."""
        parts = []
        for seen in self.checks:
            text = f"{seen.check} {seen.status}"
            if seen.status != AlertStatus.OK.value and seen.since:
                text += f" since {seen.since[:16].replace('T', ' ')} UTC"
            parts.append(text)
        judged = (
            f"last window to {self.window_end:%Y-%m-%d %H:%M} UTC: {self.last_severity}"
            if self.last_severity
            else "no window judged yet"
        )
        return f"{self.model} {self.version}: {', '.join(parts)} ({judged})"


def _seen(row: ProductionMonitor) -> MonitorSeen:
    checks = []
    for check in Check:
        state = CheckState.from_json((row.checks or {}).get(check.value))
        checks.append(
            CheckSeen(
                check=check.label,
                status=state.status.value,
                since=state.episode_started,
                episode=state.episode,
                bad_run=state.bad_run,
                clean_run=state.clean_run,
            )
        )
    return MonitorSeen(
        repository=row.repository,
        model=row.model,
        version=row.version,
        status=row.status,
        pr_number=row.pr_number,
        promoted_at=row.promoted_at,
        window_end=row.window_end,
        last_severity=row.last_severity,
        last_report_id=row.last_report_id,
        checks=tuple(checks),
        lines=tuple(row.lines or ()),
    )


def monitors_of_pull(session: Session, *, repository: str, pr_number: int) -> list[MonitorSeen]:
    """The versions this PR promoted, as they are watched."""
    rows = session.scalars(
        select(ProductionMonitor)
        .where(
            ProductionMonitor.repository == repository,
            ProductionMonitor.pr_number == pr_number,
        )
        .order_by(ProductionMonitor.model, ProductionMonitor.id)
    )
    return [_seen(row) for row in rows]


def monitors_of_model(
    session: Session, *, model: str, repository: str | None = None, limit: int = 5
) -> list[MonitorSeen]:
    """A model's monitored versions, newest first."""
    query = select(ProductionMonitor).where(ProductionMonitor.model == model)
    if repository is not None:
        query = query.where(ProductionMonitor.repository == repository)
    rows = session.scalars(query.order_by(ProductionMonitor.id.desc()).limit(limit))
    return [_seen(row) for row in rows]


__all__ = ["CheckSeen", "MonitorSeen", "monitors_of_model", "monitors_of_pull"]
