"""The Pager port and its real implementation: PagerDuty's Events API v2 over httpx.

`send(event)` POSTs one event to `{base}/v2/enqueue` and returns the dedup_key PagerDuty
answered with. PagerDuty's rules (developer.pagerduty.com, "Response Codes & Retry Logic"):
202 accepted; 400 invalid, never retried (`PageRefused`); 429 and 5xx and a network error are
retried later (`PagerUnavailable`). The client itself never repeats a request: the outbox
decides when to try again (bot/paging/page_effect.py).

The routing key is added to the body as it is sent and appears nowhere else: not in the URL,
not in headers, not in any error message or log line (PagerDuty's own error texts are
redacted too, in case one ever echoes it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from bot.base.settings import Settings
from bot.base.tls import shared_tls

ENQUEUE_PATH = "/v2/enqueue"
DEFAULT_TIMEOUT_S = 10.0
_MAX_ERRORS = 5
_MAX_ERROR_TEXT = 200


class PageRefused(Exception):
    """PagerDuty refused the event for good (400, or another 4xx): sending it again won't help."""

    def __init__(self, status: int, errors: tuple[str, ...]) -> None:
        self.status = status
        self.errors = errors
        self.message = f"PagerDuty refused the event ({status})" + (
            ": " + "; ".join(errors) if errors else ""
        )
        super().__init__(self.message)


class PagerUnavailable(Exception):
    """No verdict: rate-limited (429), a server error (5xx) or no answer (status 0). The event
    may or may not have been processed; sending it again later is safe (see page_effect)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"PagerDuty unavailable ({status}): {reason}")


class Pager(Protocol):
    """The port: hand one Events API v2 event (without routing_key) to the paging service."""

    def send(self, event: Mapping[str, Any]) -> str:
        """Deliver `event`; return its dedup_key. Raises PageRefused or PagerUnavailable."""
        ...


class PagerDutyEvents:
    """The real Pager: `POST {base_url}/v2/enqueue` with the routing key in the body."""

    def __init__(
        self,
        base_url: str,
        routing_key: SecretStr,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = base_url.strip().rstrip("/")
        base = base.removesuffix(ENQUEUE_PATH)  # the full endpoint given as the base: accept it
        if not re.match(r"^https?://[^\s/]+", base):
            raise ValueError("the PagerDuty Events URL must be an http(s) URL")
        self.url = base + ENQUEUE_PATH
        self._routing_key = routing_key
        self._timeout = httpx.Timeout(timeout_s)
        self._transport = transport

    def send(self, event: Mapping[str, Any]) -> str:
        key = self._routing_key.get_secret_value()
        body = json.dumps({**event, "routing_key": key}, ensure_ascii=False).encode()
        try:
            with httpx.Client(
                timeout=self._timeout,
                transport=self._transport,
                follow_redirects=False,
                verify=shared_tls(),
            ) as client:
                response = client.post(
                    self.url,
                    content=body,
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                )
        except httpx.HTTPError as exc:
            # The exception's text may quote the request; only its kind is kept.
            raise PagerUnavailable(0, f"no answer ({type(exc).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise PagerUnavailable(status, "rate-limited" if status == 429 else "server error")
        answer = _json_object(response)
        if 200 <= status < 300:
            returned = answer.get("dedup_key")
            if isinstance(returned, str) and returned:
                return returned
            sent = event.get("dedup_key")
            if isinstance(sent, str) and sent:
                return sent
            raise PageRefused(status, ("the answer named no dedup_key",))
        raise PageRefused(status, _errors(answer, status, secret=key))


def pager_from(settings: Settings) -> PagerDutyEvents | None:
    """The pager the settings configure, or None when no routing key is set (paging is off)."""
    if settings.pagerduty_routing_key is None:
        return None
    return PagerDutyEvents(settings.pagerduty_events_url, settings.pagerduty_routing_key)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _errors(answer: Mapping[str, Any], status: int, *, secret: str) -> tuple[str, ...]:
    """PagerDuty's reasons, bounded, as plain one-line text, never containing the routing key."""
    raw = answer.get("errors")
    found = [str(e) for e in raw[:_MAX_ERRORS]] if isinstance(raw, list) else []
    if not found and isinstance(answer.get("message"), str):
        found = [answer["message"]]
    if not found and status == 404:
        found = ["the endpoint was not found: check SHIPYARD_PAGERDUTY_EVENTS_URL"]
    return tuple(_redact(text, secret) for text in found)


def _redact(text: str, secret: str) -> str:
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", text)
    if secret:
        text = text.replace(secret, "[routing key]")
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"
