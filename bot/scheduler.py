"""The APScheduler tick: claim due deadlines from the store and act on them."""

from __future__ import annotations

import logging
import threading

from apscheduler.schedulers.background import BackgroundScheduler

from bot.auto_merge import merge_when_due
from bot.context import BotContext
from bot.deadlines import claim_due
from bot.promotion_state import REVIEW_WINDOW
from bot.retention import RetentionJob

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


class DeadlineScheduler:
    """Runs `tick` every `interval_s` seconds in a background thread."""

    def __init__(self, ctx: BotContext, *, interval_s: float) -> None:
        self._ctx = ctx
        self._retention = RetentionJob(ctx)
        self._busy = False
        self._lock = threading.Lock()
        # A tick still running when the next is due is simply skipped; that is not news.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=interval_s,
            max_instances=1,
            coalesce=True,
            id="shipyard-deadlines",
        )

    @property
    def busy(self) -> bool:
        return self._busy

    def _tick(self) -> None:
        with self._lock:
            self._busy = True
            try:
                tick(self._ctx)
                self._retention.run_if_due()
            finally:
                self._busy = False

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        self._scheduler.shutdown(wait=True)
