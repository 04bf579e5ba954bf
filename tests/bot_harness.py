"""Run the real bot over HTTP in tests, and send it deliveries signed as GitHub signs them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from bot.base.tls import shared_tls
from bot.base.waiting import wait_until
from bot.github.webhook_signature import sign

__all__ = ["post_delivery", "wait_until"]


def post_delivery(
    bot_url: str,
    *,
    secret: str,
    event: str,
    payload: dict[str, Any] | bytes,
    delivery_id: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret.encode(), body),
    }
    headers.update(extra_headers or {})
    return httpx.post(
        f"{bot_url}/github/webhooks",
        content=body,
        headers=headers,
        timeout=30,
        verify=shared_tls(),  # not a CA bundle load per delivery
    )
