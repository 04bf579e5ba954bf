"""The APScheduler tick: claim due deadlines from the store and act on them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from bot.base.observability import log_context
from bot.monitoring import monitor_check
from bot.promotion.auto_merge import merge_when_due
from bot.promotion.deadlines import claim_due, retry_later
from bot.promotion.promotion_state import (
    CANARY_CHECK,
    MONITOR_CHECK,
    REVIEW_WINDOW,
    SHADOW_CHECK,
)
from bot.rollout import canary_stage, shadow_stage
from bot.runtime.context import BotContext
from bot.runtime.heartbeat import lease_of
from bot.runtime.retention import RetentionJob
from bot.service.outbox_worker import drain_outbox
from bot.store.models import Deadline, DeadlineStatus

log = logging.getLogger(__name__)


def tick(ctx: BotContext) -> int:
    """One pass over due deadlines; returns how many were handled.

    Deadlines are claimed one at a time with a short lease that a heartbeat renews while
    the merge runs: a bot that dies mid-merge is replaced within a minute, and no claimed
    row waits (and lapses) behind a slow one.
    """
    handled = 0
    lease = timedelta(seconds=ctx.settings.lease_s)
    while not ctx.stopping.is_set():
        batch = claim_due(ctx.store, now=ctx.clock.now(), limit=1, lease=lease)
        if not batch:
            return handled
        for deadline in batch:
            assert deadline.claim_token is not None
            with (
                log_context(pr_number=deadline.pr_number),
                lease_of(
                    ctx,
                    model=Deadline,
                    pk=deadline.id,
                    token=deadline.claim_token,
                    active_status=DeadlineStatus.CLAIMED.value,
                ),
            ):
                if deadline.kind == REVIEW_WINDOW:
                    try:
                        merge_when_due(ctx, deadline)
                    except Exception:
                        # The lease lapses and another tick retries; nothing was recorded done.
                        log.exception("deadline %s failed", deadline.id)
                elif deadline.kind == SHADOW_CHECK and ctx.settings.shadow_enabled:
                    _visit(ctx, deadline, shadow_stage.advance)
                elif deadline.kind == CANARY_CHECK and ctx.settings.canary_enabled:
                    _visit(ctx, deadline, canary_stage.advance)
                elif deadline.kind == MONITOR_CHECK and ctx.settings.monitoring_enabled:
                    _visit(ctx, deadline, monitor_check.check)
            handled += 1
    return handled


def _visit(
    ctx: BotContext, deadline: Deadline, visit: Callable[[BotContext, Deadline], str]
) -> None:
    """A shadow, canary or monitoring visit. When staging, production or GitHub fails, look
    again after a back-off: the stage stays as its row says (never passed, promoted or lost by
    an error)."""
    try:
        visit(ctx, deadline)
    except Exception as exc:
        log.exception("%s %s failed", deadline.kind, deadline.id)
        retry_later(
            ctx.store, deadline_id=deadline.id, now=ctx.clock.now(), error=type(exc).__name__
        )


class DeadlineScheduler:
    """Runs `tick` every `interval_s` seconds in a background thread."""

    def __init__(self, ctx: BotContext, *, interval_s: float) -> None:
        self._ctx = ctx
        self._retention = RetentionJob(ctx)
        self._busy = False
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
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
            self._idle.clear()
            try:
                tick(self._ctx)
                drain_outbox(self._ctx)
                self._retention.run_if_due()
            finally:
                self._busy = False
                self._idle.set()

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self, grace_s: float = 30) -> None:
        """Stop ticking; wait up to `grace_s` for a running tick (a stuck one lapses to others)."""
        self._scheduler.shutdown(wait=False)
        self._idle.wait(grace_s)
