"""The audit trail: every event, verdict and decision as a row with who, when, SHA and why."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import AuditEvent

BOT_ACTOR = "shipyard"


def record(
    session: Session,
    *,
    at: datetime,
    repository: str,
    kind: str,
    actor: str = BOT_ACTOR,
    pr_number: int | None = None,
    head_sha: str | None = None,
    model: str | None = None,
    reason: str | None = None,
    detail: dict[str, object] | None = None,
) -> AuditEvent:
    """Add one audit row in the caller's transaction."""
    row = AuditEvent(
        at=at,
        repository=repository,
        kind=kind,
        actor=actor,
        pr_number=pr_number,
        head_sha=head_sha,
        model=model,
        reason=reason,
        detail=detail,
    )
    session.add(row)
    return row


def trail(session: Session, *, repository: str, pr_number: int) -> list[AuditEvent]:
    """A PR's audit rows, oldest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.repository == repository, AuditEvent.pr_number == pr_number)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return list(session.scalars(query))
