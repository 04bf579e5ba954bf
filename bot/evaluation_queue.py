"""Evaluation jobs as rows: enqueue on registration, claim with a lease, cancel on a newer push."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bot.store.db import Store
from bot.store.models import Evaluation, EvaluationStatus

LEASE = timedelta(minutes=30)
ACTIVE = (EvaluationStatus.QUEUED.value, EvaluationStatus.IN_PROGRESS.value)


def enqueue(
    session: Session,
    *,
    now: datetime,
    repository: str,
    installation_id: int,
    pr_number: int,
    head_sha: str,
    base_sha: str,
    base_ref: str,
    model: str,
) -> Evaluation | None:
    """Queue an evaluation unless one for the same (repo, PR, SHA, model) is already active."""
    active = session.scalar(
        select(Evaluation).where(
            Evaluation.repository == repository,
            Evaluation.pr_number == pr_number,
            Evaluation.head_sha == head_sha,
            Evaluation.model == model,
            Evaluation.status.in_(ACTIVE),
        )
    )
    if active is not None:
        return None
    row = Evaluation(
        repository=repository,
        installation_id=installation_id,
        pr_number=pr_number,
        head_sha=head_sha,
        base_sha=base_sha,
        base_ref=base_ref,
        model=model,
        status=EvaluationStatus.QUEUED.value,
        attempts=0,
        created_at=now,
    )
    session.add(row)
    return row


def cancel_superseded(session: Session, *, repository: str, pr_number: int, head_sha: str) -> int:
    """A newer push: runs for older heads of this PR stop counting (and stop, if running)."""
    result = session.execute(
        update(Evaluation)
        .where(
            Evaluation.repository == repository,
            Evaluation.pr_number == pr_number,
            Evaluation.head_sha != head_sha,
            Evaluation.status.in_(ACTIVE),
        )
        .values(status=EvaluationStatus.CANCELLED.value)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def claim_next(store: Store, *, now: datetime) -> Evaluation | None:
    """Take the oldest queued evaluation, or one whose worker died (lease lapsed)."""
    due = or_(
        Evaluation.status == EvaluationStatus.QUEUED.value,
        and_(
            Evaluation.status == EvaluationStatus.IN_PROGRESS.value,
            Evaluation.lease_until <= now,
        ),
    )
    with store.session() as session:
        query = select(Evaluation.id).where(due).order_by(Evaluation.id).limit(1)
        if store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        pk = session.scalar(query)
        if pk is None:
            return None
        claimed = session.execute(
            update(Evaluation)
            .where(Evaluation.id == pk, due)
            .values(
                status=EvaluationStatus.IN_PROGRESS.value,
                lease_until=now + LEASE,
                started_at=now,
                attempts=Evaluation.attempts + 1,
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(Evaluation, pk)
        assert row is not None
        session.expunge(row)
        return row


def is_cancelled(store: Store, evaluation_id: int) -> bool:
    with store.session() as session:
        row = session.get(Evaluation, evaluation_id)
        return row is None or row.status == EvaluationStatus.CANCELLED.value


def active_count(store: Store) -> int:
    """Evaluations queued or running."""
    with store.session() as session:
        return len(
            list(session.scalars(select(Evaluation.id).where(Evaluation.status.in_(ACTIVE))))
        )
