"""The outbox's part of the scheduler tick: retry effects that a transient failure left pending.

Importing the modules below registers every kind of effect, so a replica that restarts with
effects pending can carry out any of them.
"""

from __future__ import annotations

import logging

from bot.paging import page_effect
from bot.promotion import auto_merge, check_runs, report_comment
from bot.rollout import deployments
from bot.runtime import outbox, outbox_replies
from bot.runtime.context import BotContext

log = logging.getLogger(__name__)

KINDS = (
    auto_merge.MERGE,
    check_runs.KIND,
    outbox_replies.REPLY,
    report_comment.KIND,
    deployments.KIND,
    page_effect.KIND,
)


def drain_outbox(ctx: BotContext) -> int:
    """Carry out due effects; a failure stays in the row for the next tick, never raised."""
    try:
        return outbox.drain(ctx)
    except Exception:
        log.exception("outbox tick failed")
        return 0
