"""Inbox workers: claim a stored delivery, dispatch it to its handler, record the outcome."""

from __future__ import annotations

import json
import logging
import traceback

from bot.context import BotContext
from bot.dispatch import dispatch
from bot.inbox import LEASE, claim_batch, finish, finish_many, release
from bot.worker_pool import WorkerPool

log = logging.getLogger(__name__)

BATCH = 16


def handle_one(ctx: BotContext) -> bool:
    """Claim and handle one delivery; False when nothing was due."""
    return handle_batch(ctx, limit=1)


def handle_batch(ctx: BotContext, *, limit: int = BATCH) -> bool:
    """Claim up to `limit` deliveries and handle them in order; False when nothing was due.

    Under load one claim and one "done" UPDATE serve a whole batch instead of two write
    transactions per delivery. Rows not started within a quarter of the lease are handed
    back, so a slow batch never lets a claimed row's lease lapse unworked.
    """
    started = ctx.clock.now()
    rows = claim_batch(ctx.store, now=started, limit=limit)
    if not rows:
        return False
    done: list[int] = []
    for index, row in enumerate(rows):
        if index and ctx.clock.now() - started > LEASE / 4:
            release(ctx.store, delivery_pks=[r.id for r in rows[index:]])
            break
        try:
            dispatch(ctx, row.event, json.loads(row.payload))
        except Exception as exc:
            log.warning(
                "delivery %s (%s) failed: %s", row.delivery_id, row.event, type(exc).__name__
            )
            detail = "".join(traceback.format_exception_only(exc)).strip()
            finish(ctx.store, delivery_pk=row.id, now=ctx.clock.now(), error=detail)
            continue
        done.append(row.id)
    finish_many(ctx.store, delivery_pks=done, now=ctx.clock.now())
    return True


def inbox_workers(ctx: BotContext, *, threads: int) -> WorkerPool:
    """Threads draining the inbox; woken on each new delivery, polling otherwise."""
    return WorkerPool(name="inbox", threads=threads, job=lambda: handle_batch(ctx))
