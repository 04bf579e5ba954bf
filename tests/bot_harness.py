"""Run the real bot over HTTP in tests, and send it deliveries signed as GitHub signs them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from bot.webhook_signature import sign


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
    return httpx.post(f"{bot_url}/github/webhooks", content=body, headers=headers, timeout=30)


def wait_until(
    condition: Callable[[], Any], *, timeout_s: float = 30, what: str = "", every_s: float = 0.02
) -> Any:
    """Poll `condition` until it is truthy; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(every_s)
