"""The APScheduler tick: claim due deadlines from the store and act on them."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from bot.auto_merge import merge_when_due
from bot.context import BotContext
from bot.deadlines import claim_due
from bot.promotion_state import REVIEW_WINDOW

log = logging.getLogger(__name__)


def tick(ctx: BotContext) -> int:
    """One pass over due deadlines; returns how many were handled."""
    handled = 0
    while True:
        batch = claim_due(ctx.store, now=ctx.clock.now())
        if not batch:
            return handled
        for deadline in batch:
            if deadline.kind == REVIEW_WINDOW:
                try:
                    merge_when_due(ctx, deadline)
                except Exception:
                    # The lease lapses and another tick retries; nothing was recorded as done.
                    log.exception("deadline %s failed", deadline.id)
            handled += 1


def start_scheduler(ctx: BotContext, *, interval_s: float) -> BackgroundScheduler:
    # A tick still running when the next is due is simply skipped; that is not news.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        tick,
        "interval",
        args=[ctx],
        seconds=interval_s,
        max_instances=1,
        coalesce=True,
        id="shipyard-deadlines",
    )
    scheduler.start()
    return scheduler
