"""Retention: what the bot read from the internet is not kept forever.

Handled deliveries (their payloads are whole webhook bodies) and Slack request hashes go after
`delivery_retention_days`; audit rows, the record of who did what, after the longer
`audit_retention_days`; monitoring's drift reports (one per model and window, the bulk of the
store for a long-watched model) after `report_link_ttl_days`, when their links stop working
anyway. Runs from the scheduler tick, at most hourly by the injected clock.
"""

from __future__ import annotations

import logging
from dataclasses import astuple, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete

from bot.runtime.context import BotContext
from bot.store.models import AuditEvent, Delivery, DeliveryStatus, DriftCheck
from bot.store.slack_models import SlackRequest

log = logging.getLogger(__name__)

EVERY = timedelta(hours=1)
# A Slack request hash must outlive the time its signed request could be replayed (five
# minutes, plus clock skew): bot/slack/dedupe.py relies on it.
SLACK_DEDUPE_WINDOW = timedelta(hours=1)
FINISHED = (DeliveryStatus.DONE.value, DeliveryStatus.FAILED.value)


@dataclass(frozen=True)
class Pruned:
    deliveries: int
    slack_requests: int
    audit_events: int
    drift_reports: int = 0


def prune(ctx: BotContext, *, now: datetime) -> Pruned:
    """Delete what is past its retention; pending or in-progress deliveries are never touched."""
    settings = ctx.settings
    kept = timedelta(days=settings.delivery_retention_days)
    with ctx.store.engine.begin() as conn:
        deliveries = conn.execute(
            delete(Delivery).where(
                Delivery.status.in_(FINISHED), Delivery.processed_at < now - kept
            )
        ).rowcount
        # A hash must outlive the window in which its signed request could be replayed.
        slack_cutoff = now - max(kept, SLACK_DEDUPE_WINDOW)
        slack_requests = conn.execute(
            delete(SlackRequest).where(SlackRequest.received_at < slack_cutoff)
        ).rowcount
        audit_cutoff = now - timedelta(days=settings.audit_retention_days)
        audit_events = conn.execute(delete(AuditEvent).where(AuditEvent.at < audit_cutoff)).rowcount
        reports_cutoff = now - timedelta(days=settings.report_link_ttl_days)
        drift_reports = conn.execute(
            delete(DriftCheck).where(DriftCheck.created_at < reports_cutoff)
        ).rowcount
    return Pruned(deliveries, slack_requests, audit_events, drift_reports)


class RetentionJob:
    """Called on every scheduler tick; prunes when an hour (on the injected clock) has passed."""

    def __init__(self, ctx: BotContext) -> None:
        self._ctx = ctx
        self._next: datetime | None = None

    def run_if_due(self) -> Pruned | None:
        now = self._ctx.clock.now()
        if self._next is not None and now < self._next:
            return None
        try:
            pruned = prune(self._ctx, now=now)
        except Exception:
            log.exception("pruning old rows failed; next tick tries again")
            return None
        self._next = now + EVERY
        if any(astuple(pruned)):
            log.info("retention: pruned %s", pruned)
        return pruned
