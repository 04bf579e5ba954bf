"""A person's /rollback, /pause, /resume, /promote or /ack on a merged PR's canary, recorded for
the rollout's next visit (which carries it out, once, with everything else it does).

Commands never touch the router, GitHub or PagerDuty themselves: the rollout's visit is the one
place that changes traffic, so a command and an automatic decision can never both act. A
request is a column on the rollout row; a rollback asked for is never overwritten by a later
pause, resume or promote.
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


@dataclass(frozen=True)
class Requested:
    """What a request reached: the models it will act on (empty: nothing to act on)."""

    models: tuple[str, ...]
    statuses: tuple[str, ...]  # every rollout of the PR, "model: status", for the reply


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
        )
    )
    acted: list[str] = []
    for row in rows:
        if row.status not in _APPLIES_TO[action]:
            continue
        if action is CanaryAction.ACKNOWLEDGE and not row.paged:
            continue  # nothing open to acknowledge
        rollback_asked = row.requested_action == CanaryAction.ROLLBACK.value
        if rollback_asked and action is not CanaryAction.ROLLBACK:
            continue  # a rollback asked for stands
        row.requested_action = action.value
        row.requested_by = actor[:200]
        row.requested_reason = (reason or "")[:1000] or None
        acted.append(row.model)
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
        models=tuple(acted), statuses=tuple(f"{row.model}: {row.status}" for row in rows)
    )
