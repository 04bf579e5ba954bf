"""Inbox workers: claim a stored delivery, dispatch it to its handler, record the outcome."""

from __future__ import annotations

import json
import logging
import traceback

from bot.context import BotContext
from bot.dispatch import dispatch
from bot.inbox import claim_next, finish
from bot.worker_pool import WorkerPool

log = logging.getLogger(__name__)


def handle_one(ctx: BotContext) -> bool:
    """Claim and handle one delivery; False when nothing was due."""
    row = claim_next(ctx.store, now=ctx.clock.now())
    if row is None:
        return False
    try:
        dispatch(ctx, row.event, json.loads(row.payload))
    except Exception as exc:
        log.warning("delivery %s (%s) failed: %s", row.delivery_id, row.event, type(exc).__name__)
        detail = "".join(traceback.format_exception_only(exc)).strip()
        finish(ctx.store, delivery_pk=row.id, now=ctx.clock.now(), error=detail)
        return True
    finish(ctx.store, delivery_pk=row.id, now=ctx.clock.now())
    return True


def inbox_workers(ctx: BotContext, *, threads: int) -> WorkerPool:
    """Threads draining the inbox; woken on each new delivery, polling otherwise."""
    return WorkerPool(name="inbox", threads=threads, job=lambda: handle_one(ctx))
