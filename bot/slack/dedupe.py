"""Each signed Slack request acts once: its body hash is stored; a replay or retry is dropped."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

from slack_bolt.middleware.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy.exc import IntegrityError

from bot.base.clock import Clock
from bot.store.db import Store
from bot.store.slack_models import SlackRequest

log = logging.getLogger(__name__)


def body_key(raw_body: str) -> str:
    """The hash of a request body. Slack bodies carry a unique trigger_id or event_id, and a
    retry (X-Slack-Retry-Num) repeats the body with a new signature, so the body is the key."""
    return hashlib.sha256(raw_body.encode()).hexdigest()


def first_time(store: Store, *, key: str, kind: str, now: datetime) -> bool:
    """Record `key`; False when it was recorded before (by this or any other replica).
    Old hashes are pruned by bot/runtime/retention.py, not on this (acknowledgement) path."""
    try:
        with store.session() as session:
            session.add(SlackRequest(body_sha256=key, kind=kind[:40], received_at=now))
            session.flush()
    except IntegrityError:
        return False
    return True


class DropRepeats(Middleware):
    """Bolt middleware (after signature verification): acknowledge a repeat and do nothing."""

    def __init__(self, *, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],  # Bolt passes it by this name
    ) -> BoltResponse:
        kind = str(req.body.get("type") or req.body.get("command") or "unknown")
        if first_time(self._store, key=body_key(req.raw_body), kind=kind, now=self._clock.now()):
            return next()
        retry = req.headers.get("x-slack-retry-num", ["0"])[0]
        log.info("dropped a repeated Slack request (%s, retry %s)", kind, retry)
        return BoltResponse(status=200, body="")
