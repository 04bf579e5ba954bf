"""Inbox workers: claim stored deliveries, dispatch each to its handler, record the outcome.

Workers claim a small batch at once (one UPDATE … RETURNING instead of a write transaction per
delivery); the delivery being handled has its lease renewed by a heartbeat, and rows of the
batch not started within a quarter of the lease are handed back. A delivery that
used every attempt is never silently dropped: it is logged, counted and, where there is a
PR, shown on it as a failing check.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import timedelta
from typing import Any

from bot.base.observability import (
    DELIVERIES_EXHAUSTED,
    DELIVERY_ATTEMPTS,
    DELIVERY_FAILURES,
    log_context,
)
from bot.base.worker_pool import WorkerPool
from bot.promotion.check_runs import CheckOutput, publish
from bot.promotion.pr_refresh import get_pull
from bot.runtime.context import BotContext
from bot.runtime.heartbeat import lease_of
from bot.runtime.inbox import (
    MAX_ATTEMPTS,
    claim_batch,
    finish,
    finish_many,
    release,
    take_exhausted,
)
from bot.service.dispatch import dispatch
from bot.store.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

DELIVERY_CHECK = "Shipyard / event"


BATCH = 16


def handle_one(ctx: BotContext) -> bool:
    """Claim and handle one delivery; False when nothing was due."""
    return handle_batch(ctx, limit=1)


def handle_batch(ctx: BotContext, *, limit: int = BATCH) -> bool:
    """Claim up to `limit` deliveries and handle them in order; False when nothing was due."""
    started = ctx.clock.now()
    lease = timedelta(seconds=ctx.settings.lease_s)
    rows = claim_batch(ctx.store, now=started, limit=limit, lease=lease)
    if len(rows) < limit:  # not saturated: also look for rows that used every attempt
        for gone in take_exhausted(ctx.store, now=started):
            report_exhausted(ctx, gone)
    if not rows:
        return False
    token = rows[0].claim_token
    done: list[int] = []
    for index, row in enumerate(rows):
        if index and ctx.clock.now() - started > lease / 4:
            # Waiting rows have no heartbeat: give them back before their lease can lapse.
            release(ctx.store, delivery_pks=[r.id for r in rows[index:]], claim_token=token)
            break
        if _handle(ctx, row):
            done.append(row.id)
    finish_many(ctx.store, delivery_pks=done, claim_token=token, now=ctx.clock.now())
    return True


def _handle(ctx: BotContext, row: Delivery) -> bool:
    """Dispatch one claimed delivery under its heartbeat; True when it succeeded."""
    payload = _payload(row)
    with log_context(delivery_id=row.delivery_id, pr_number=_pr_number(payload)):
        DELIVERY_ATTEMPTS.labels(row.event).inc()
        assert row.claim_token is not None
        with lease_of(
            ctx,
            model=Delivery,
            pk=row.id,
            token=row.claim_token,
            active_status=DeliveryStatus.PROCESSING.value,
        ):
            try:
                dispatch(ctx, row.event, payload)
            except Exception as exc:
                DELIVERY_FAILURES.labels(row.event).inc()
                log.warning(
                    "delivery %s (%s) attempt %d failed: %s",
                    row.delivery_id,
                    row.event,
                    row.attempts,
                    type(exc).__name__,
                )
                error = "".join(traceback.format_exception_only(exc)).strip()
            else:
                return True
        status = finish(
            ctx.store,
            delivery_pk=row.id,
            claim_token=row.claim_token,
            now=ctx.clock.now(),
            error=error,
        )
        if status is None:
            log.warning("delivery %s was taken over by another worker", row.delivery_id)
        elif status == DeliveryStatus.FAILED.value:
            report_exhausted(ctx, row)
        return False


def report_exhausted(ctx: BotContext, row: Delivery) -> None:
    """A log line and a metric always; a failing check on the PR when there is one."""
    DELIVERIES_EXHAUSTED.labels(row.event).inc()
    payload = _payload(row)
    number = _pr_number(payload)
    with log_context(delivery_id=row.delivery_id, pr_number=number):
        log.error(
            "delivery %s (%s) given up after %d attempts", row.delivery_id, row.event, row.attempts
        )
        if number is None or row.repository is None or row.installation_id is None:
            return
        try:
            client = ctx.github.installation(row.installation_id)
            head_sha = _head_sha(payload) or get_pull(client, row.repository, number).head.sha
            publish(
                client=client,
                store=ctx.store,
                now=ctx.clock.now(),
                repo=row.repository,
                head_sha=head_sha,
                name=DELIVERY_CHECK,
                status="completed",
                conclusion="failure",
                output=CheckOutput(
                    title="Shipyard could not process an event for this pull request",
                    summary=exhausted_sentence(row.event, row.delivery_id, MAX_ATTEMPTS),
                ),
                external_id=f"delivery:{row.delivery_id}"[:100],
            )
        except Exception as exc:
            log.error("could not show the exhausted delivery on the PR: %s", type(exc).__name__)


def exhausted_sentence(event: str, delivery_id: str, attempts: int) -> str:
    """What the PR shows; names the delivery so an operator can find it in the logs."""
    return (
        f"Shipyard could not process this `{event}` event after {attempts} attempts, so "
        "some checks on this pull request may be missing or out of date. Push a new commit "
        "or comment `/retest` to try again; if this keeps happening, ask the Shipyard "
        f"operators to look up delivery `{delivery_id[:100]}`."
    )


def _payload(row: Delivery) -> dict[str, Any]:
    try:
        data = json.loads(row.payload)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _pr_number(payload: dict[str, Any]) -> int | None:
    pull = payload.get("pull_request")
    if isinstance(pull, dict) and isinstance(pull.get("number"), int):
        return int(pull["number"])
    issue = payload.get("issue")
    is_pull = isinstance(issue, dict) and bool(issue.get("pull_request"))
    if is_pull and isinstance(issue, dict) and isinstance(issue.get("number"), int):
        return int(issue["number"])
    return None


def _head_sha(payload: dict[str, Any]) -> str | None:
    pull = payload.get("pull_request")
    head = pull.get("head") if isinstance(pull, dict) else None
    sha = head.get("sha") if isinstance(head, dict) else None
    return sha if isinstance(sha, str) else None


def inbox_workers(ctx: BotContext, *, threads: int) -> WorkerPool:
    """Threads draining the inbox; woken on each new delivery, polling otherwise."""
    return WorkerPool(name="inbox", threads=threads, job=lambda: handle_batch(ctx))
