"""A person's /rollback, /pause, /resume, /promote or /ack on a merged PR's canary, recorded for
the rollout's next visit (which carries it out, once, with everything else it does).

Commands never touch the router, GitHub or PagerDuty themselves: the rollout's visit is the one
place that changes traffic, so a command and an automatic decision can never both act. A
request is a column on the rollout row, so requests rank: a rollback asked for is never
overwritten by a later pause, resume, promote or acknowledgement (nor re-attributed by a second
rollback), and an acknowledgement never overwrites a pending pause, resume or promote (the person
acting on the rollout has seen it; the visit carrying that out can resolve the page too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.promotion.promotion_state import CANARY_CHECK
from bot.store.models import CanaryRollout, CanaryStatus, Deadline, DeadlineStatus


class CanaryAction(StrEnum):
    ROLLBACK = "rollback"
    PAUSE = "pause"
    RESUME = "resume"
    PROMOTE = "promote"
    ACKNOWLEDGE = "acknowledge"  # a person has seen the rollback or pause: resolve the page


# Which rollouts each action applies to.
_APPLIES_TO: dict[CanaryAction, tuple[str, ...]] = {
    CanaryAction.ROLLBACK: (CanaryStatus.RUNNING.value, CanaryStatus.PAUSED.value),
    CanaryAction.PAUSE: (CanaryStatus.RUNNING.value,),
    CanaryAction.RESUME: (CanaryStatus.PAUSED.value,),
    CanaryAction.PROMOTE: (CanaryStatus.RUNNING.value, CanaryStatus.PAUSED.value),
    CanaryAction.ACKNOWLEDGE: (CanaryStatus.ROLLED_BACK.value, CanaryStatus.PAUSED.value),
}


# A pending request is replaced only by one of the same or a higher rank.
_RANK: dict[str, int] = {
    CanaryAction.ROLLBACK.value: 3,
    CanaryAction.PAUSE.value: 2,
    CanaryAction.RESUME.value: 2,
    CanaryAction.PROMOTE.value: 2,
    CanaryAction.ACKNOWLEDGE.value: 1,
}


@dataclass(frozen=True)
class RolloutSeen:
    """One rollout of the PR as the request found it (after recording it), for the reply."""

    model: str
    status: str
    paged: bool
    requested_action: str | None  # the request now pending, this one or an earlier one
    requested_by: str | None
    title: str = ""  # the rollout's own one-line summary of where it stands


def _seen(row: CanaryRollout) -> RolloutSeen:
    return RolloutSeen(
        model=row.model,
        status=row.status,
        paged=bool(row.paged),
        requested_action=row.requested_action,
        requested_by=row.requested_by,
        title=row.title or "",
    )


def rollouts_of(
    session: Session, *, repository: str, pr_number: int, head_sha: str | None = None
) -> tuple[RolloutSeen, ...]:
    """Every canary rollout of a PR (of one head of it), by model: for /status and Slack."""
    query = select(CanaryRollout).where(
        CanaryRollout.repository == repository, CanaryRollout.pr_number == pr_number
    )
    if head_sha is not None:
        query = query.where(CanaryRollout.head_sha == head_sha)
    rows = session.scalars(query.order_by(CanaryRollout.model))
    return tuple(_seen(row) for row in rows)


@dataclass(frozen=True)
class Requested:
    """What a request reached: the models it will act on (empty: nothing to act on)."""

    models: tuple[str, ...]
    rollouts: tuple[RolloutSeen, ...]  # every rollout of the PR, by model
    withdrawn: tuple[str, ...] = ()  # a /resume before the visit: the pause asked is dropped

    @property
    def statuses(self) -> tuple[str, ...]:
        """Every rollout of the PR, "model: status"."""
        return tuple(f"{r.model}: {r.status}" for r in self.rollouts)


def request(
    session: Session,
    *,
    repository: str,
    pr_number: int,
    action: CanaryAction,
    actor: str,
    reason: str | None,
    now: datetime,
) -> Requested:
    """Record `action` on every rollout of the PR it applies to, and make the visit due now."""
    rows = list(
        session.scalars(
            select(CanaryRollout)
            .where(CanaryRollout.repository == repository, CanaryRollout.pr_number == pr_number)
            .order_by(CanaryRollout.model)
            # Locked until commit: a command on another replica, or the rollout's visit, must
            # not write the row between this read and this write (a lost rollback).
            .with_for_update()
        )
    )
    acted: list[str] = []
    withdrawn: list[str] = []
    for row in rows:
        if action is CanaryAction.RESUME and row.status == CanaryStatus.RUNNING.value:
            if (
                row.requested_action == CanaryAction.PAUSE.value
            ):  # not paused yet: the pause is simply no longer asked for
                row.requested_action = row.requested_by = row.requested_reason = None
                withdrawn.append(row.model)
            continue
        if row.status not in _APPLIES_TO[action]:
            continue
        if action is CanaryAction.ACKNOWLEDGE and not row.paged:
            continue  # nothing open to acknowledge
        pending = row.requested_action
        if pending is not None and _RANK.get(pending, 0) > _RANK[action.value]:
            continue  # a rollback asked for stands; a pending decision outranks an ack
        acted.append(row.model)
        if pending == action.value == CanaryAction.ROLLBACK.value:
            continue  # already asked: the first reason is the one the rollback gives
        row.requested_action = action.value
        row.requested_by = actor[:200]
        row.requested_reason = (reason or "")[:1000] or None
    if acted:
        session.execute(
            update(Deadline)
            .where(
                Deadline.kind == CANARY_CHECK,
                Deadline.repository == repository,
                Deadline.pr_number == pr_number,
                # A visit under way sees the request itself; an ended rollout is visited again.
                Deadline.status != DeadlineStatus.CLAIMED.value,
            )
            .values(status=DeadlineStatus.PENDING.value, due_at=now, lease_until=None, attempts=0)
        )
    return Requested(
        models=tuple(acted),
        withdrawn=tuple(withdrawn),
        rollouts=tuple(_seen(row) for row in rows),
    )
