"""Evaluation jobs as rows: enqueue on registration, claim with a short lease, cancel on a push."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from bot.runtime.claims import claim_rows
from bot.store.db import Store
from bot.store.models import Evaluation, EvaluationStatus

LEASE = timedelta(seconds=30)  # renewed by a heartbeat while the evaluation runs
MAX_CLAIMS = 5  # a job whose worker dies this many times is failed, not retried forever
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
    """Queue an evaluation unless one for the same (repo, PR, SHA, model) is already active.

    An active run whose worker is gone (lease lapsed) does not count: it is taken over and
    queued again at once, so `/retest` on a stuck evaluation works.
    """
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
        stuck = (
            active.status == EvaluationStatus.IN_PROGRESS.value
            and active.lease_until is not None
            and active.lease_until <= now
        )
        if not stuck:
            return None
        active.status = EvaluationStatus.QUEUED.value
        active.lease_until = None
        active.claim_token = None  # the vanished worker can no longer publish
        active.attempts = 0
        return active
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


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(
        Evaluation.attempts < MAX_CLAIMS,
        or_(
            Evaluation.status == EvaluationStatus.QUEUED.value,
            and_(
                Evaluation.status == EvaluationStatus.IN_PROGRESS.value,
                Evaluation.lease_until <= now,
            ),
        ),
    )


def claim_next(store: Store, *, now: datetime, lease: timedelta = LEASE) -> Evaluation | None:
    """Take the oldest queued evaluation, or one whose worker died (lease lapsed)."""
    rows = claim_rows(
        store,
        Evaluation,
        where=_claimable(now),
        order_by=(Evaluation.id,),
        limit=1,
        values={
            "status": EvaluationStatus.IN_PROGRESS.value,
            "lease_until": now + lease,
            "started_at": now,
            "attempts": Evaluation.attempts + 1,
        },
    )
    return rows[0] if rows else None


def take_abandoned(store: Store, *, now: datetime) -> list[Evaluation]:
    """Runs whose worker died on every claim: returned once (to be failed), never reclaimed."""
    stuck = and_(
        Evaluation.attempts >= MAX_CLAIMS,
        Evaluation.status == EvaluationStatus.IN_PROGRESS.value,
        Evaluation.lease_until <= now,
    )
    return claim_rows(
        store,
        Evaluation,
        where=stuck,
        order_by=(Evaluation.id,),
        limit=5,
        values={"lease_until": now + LEASE},
    )


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
