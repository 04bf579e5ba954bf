"""Deadline rows: claimed atomically when due, so replicas and restarts never lose or double one."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.promotion.promotion_state import (
    CANARY_CHECK,
    MONITOR_CHECK,
    REVIEW_WINDOW,
    SHADOW_CHECK,
)
from bot.runtime.claims import claim_rows
from bot.store.db import Store
from bot.store.models import Deadline, DeadlineStatus

LEASE = timedelta(seconds=30)  # renewed by a heartbeat while the deadline is acted on


def claim_due(
    store: Store, *, now: datetime, limit: int = 20, lease: timedelta = LEASE
) -> list[Deadline]:
    """Take due rows (or rows whose claimer died) — `FOR UPDATE SKIP LOCKED` on PostgreSQL."""
    due = and_(
        Deadline.due_at <= now,
        or_(
            Deadline.status == DeadlineStatus.PENDING.value,
            and_(Deadline.status == DeadlineStatus.CLAIMED.value, Deadline.lease_until <= now),
        ),
    )
    return claim_rows(
        store,
        Deadline,
        where=due,
        order_by=(Deadline.due_at, Deadline.id),
        limit=limit,
        values={
            "status": DeadlineStatus.CLAIMED.value,
            "lease_until": now + lease,
            "attempts": Deadline.attempts + 1,
        },
    )


def settle(store: Store, *, deadline_id: int, result: str) -> None:
    """Record the outcome, unless the row was finished or cancelled meanwhile (a stale worker)."""
    with store.session() as session:
        row = session.get(Deadline, deadline_id)
        if row is not None and row.status == DeadlineStatus.CLAIMED.value:
            row.status = DeadlineStatus.DONE.value
            row.lease_until = None
            row.result = result[:2000]


def retry_later(store: Store, *, deadline_id: int, now: datetime, error: str) -> None:
    """Leave the row claimable again after a back-off (a transient GitHub failure)."""
    with store.session() as session:
        row = session.get(Deadline, deadline_id)
        if row is not None and row.status == DeadlineStatus.CLAIMED.value:
            row.lease_until = now + timedelta(minutes=min(60, 2 ** min(row.attempts, 6)))
            row.result = error[:2000]


def _of_head(kind: str, repository: str, pr_number: int, head_sha: str) -> Select[Deadline]:
    return select(Deadline).where(
        Deadline.kind == kind,
        Deadline.repository == repository,
        Deadline.pr_number == pr_number,
        Deadline.head_sha == head_sha,
    )


def _new(
    kind: str,
    repository: str,
    installation_id: int,
    pr_number: int,
    head_sha: str,
    due_at: datetime,
) -> Deadline:
    return Deadline(
        kind=kind,
        repository=repository,
        installation_id=installation_id,
        pr_number=pr_number,
        head_sha=head_sha,
        due_at=due_at,
        status=DeadlineStatus.PENDING.value,
        attempts=0,
    )


def arm_window(
    session: Session,
    *,
    repository: str,
    installation_id: int,
    pr_number: int,
    head_sha: str,
    due_at: datetime,
    kind: str = REVIEW_WINDOW,
) -> None:
    """(Re)start the `kind` deadline for this head (the review window by default); one row
    per kind and head, ever."""
    row = session.scalar(_of_head(kind, repository, pr_number, head_sha))
    if row is None:
        session.add(_new(kind, repository, installation_id, pr_number, head_sha, due_at))
        return
    row.due_at = due_at
    row.status = DeadlineStatus.PENDING.value
    row.lease_until = None
    row.claim_token = None
    row.attempts = 0


def arm_once(
    session: Session,
    *,
    kind: str,
    repository: str,
    installation_id: int,
    pr_number: int,
    head_sha: str,
    due_at: datetime,
) -> bool:
    """Create the `kind` deadline for this head unless it exists (a redelivered merge, or the
    merge seen both by the bot and by its webhook, starts one rollout); True when created."""
    if session.scalar(_of_head(kind, repository, pr_number, head_sha)) is not None:
        return False
    try:
        with session.begin_nested():  # another replica may insert it first: UNIQUE decides
            session.add(_new(kind, repository, installation_id, pr_number, head_sha, due_at))
    except IntegrityError:
        return False
    return True


def again_at(store: Store, *, deadline_id: int, due_at: datetime) -> None:
    """A claimed deadline that recurs (a shadow stage still collecting): due again later."""
    with store.session() as session:
        row = session.get(Deadline, deadline_id)
        if row is not None and row.status == DeadlineStatus.CLAIMED.value:
            row.status = DeadlineStatus.PENDING.value
            row.due_at = due_at
            row.lease_until = None
            row.claim_token = None
            row.attempts = 0


def hurry_shadow_checks(
    session: Session, *, repository: str, pr_number: int, now: datetime
) -> None:
    """A push, close or merge: look at the PR's shadow stages now, so an ended one is torn down
    (its deadline is not cancelled with the older head's review window)."""
    session.execute(
        update(Deadline)
        .where(
            Deadline.kind == SHADOW_CHECK,
            Deadline.repository == repository,
            Deadline.pr_number == pr_number,
            # A judged stage (done) still holds its deployment until the PR ends; a claimed
            # one is being visited and will see the change itself.
            Deadline.status != DeadlineStatus.CLAIMED.value,
        )
        .values(status=DeadlineStatus.PENDING.value, due_at=now, lease_until=None, attempts=0)
    )


def rearm_if_due(session: Session, *, repository: str, pr_number: int, head_sha: str) -> bool:
    """After /unblock: a window that ended while blocked gets acted on at the next tick."""
    row = session.scalar(
        select(Deadline).where(
            Deadline.kind == REVIEW_WINDOW,
            Deadline.repository == repository,
            Deadline.pr_number == pr_number,
            Deadline.head_sha == head_sha,
            Deadline.status == DeadlineStatus.DONE.value,
        )
    )
    if row is None:
        return False
    row.status = DeadlineStatus.PENDING.value
    row.lease_until = None
    row.claim_token = None
    return True


def cancel_for_pr(
    store_session: Session, *, repository: str, pr_number: int, except_head: str | None
) -> int:
    """Windows of older heads end when a new push arrives (or the PR closes)."""
    query = update(Deadline).where(
        # Shadow stages are torn down by their own check; a canary and the monitoring of what
        # it promoted outlive their merged PR.
        Deadline.kind.not_in([SHADOW_CHECK, CANARY_CHECK, MONITOR_CHECK]),
        Deadline.repository == repository,
        Deadline.pr_number == pr_number,
        Deadline.status.in_([DeadlineStatus.PENDING.value, DeadlineStatus.CLAIMED.value]),
    )
    if except_head is not None:
        query = query.where(Deadline.head_sha != except_head)
    result = store_session.execute(query.values(status=DeadlineStatus.CANCELLED.value))
    return int(result.rowcount)  # type: ignore[attr-defined]
