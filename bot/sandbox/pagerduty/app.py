"""PagerDuty's Events API v2 as PagerDuty answers it: `POST /v2/enqueue`, plus test hooks.

What it checks and answers, after developer.pagerduty.com ("Send an Alert Event", "Response
Codes & Retry Logic", "Size Limits") and answers PagerDuty is seen giving:
- the body is read up to 512 KB, refused beyond it before any parsing;
- not a JSON object: 400 "Unrecognized object" / "JSON parse error" (PagerDuty's OpenAPI example);
- every other problem: 400 `{"status": "invalid event", "message": "Event object is invalid",
  "errors": [...]}`, one sentence per problem: a routing_key that is not 32 alphanumeric
  characters (PagerDuty's own two sentences), a well-formed key of no integration ("Invalid
  routing key", as PagerDuty answers it, robusta-dev/robusta#571), event_action, dedup_key
  (≤ 255; required for acknowledge and resolve), and for a trigger the payload's summary
  (≤ 1,024: PagerDuty's sentence, typo included, getsentry/sentry#16585, dagster#19567),
  source, severity, timestamp, custom_details, links, images;
- accepted: 202 `{"status": "success", "message": "Event processed", "dedup_key": ...}`.

Alerts follow PagerDuty's de-duplication: a trigger whose dedup_key names an open
(triggered or acknowledged) incident adds to it; otherwise it opens a new one (a trigger
without dedup_key gets a fresh UUID). Acknowledge and resolve act on the open incident with
their key, and are accepted and dropped when there is none.

Test hooks under `/_sandbox/`: the incidents, the number of enqueue requests received, and
faults for the next N requests: `429` or `500` (not processed), `process_then_502` and
`process_then_drop` (processed, then the answer is a 502 or the connection is closed: a lost
answer).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from bot.base.capped_body import BodyBudget, BodyTooLarge, TooBusy, read_capped

MAX_EVENT_BYTES = 512_000
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
_OPEN = ("triggered", "acknowledged")

Fault = Literal["429", "500", "process_then_502", "process_then_drop"]
FAULTS: tuple[str, ...] = ("429", "500", "process_then_502", "process_then_drop")


@dataclass
class Incident:
    """One alert as PagerDuty keeps it: opened by a trigger, then acknowledged or resolved."""

    number: int
    dedup_key: str
    status: str  # triggered | acknowledged | resolved
    summary: str
    source: str
    severity: str
    custom_details: dict[str, Any]
    links: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)  # each accepted event, no key

    def view(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "dedup_key": self.dedup_key,
            "status": self.status,
            "summary": self.summary,
            "source": self.source,
            "severity": self.severity,
            "custom_details": self.custom_details,
            "links": self.links,
            "events": self.events,
        }


class PagerDutyState:
    """The incidents of the one service whose integration key is `routing_key`."""

    def __init__(self, routing_key: str) -> None:
        self.routing_key = routing_key
        self.incidents: list[Incident] = []
        self.received = 0  # enqueue requests, faulted ones included
        self.dropped: list[dict[str, Any]] = []  # acknowledge/resolve with no open incident
        self._faults: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def arm(self, fault: str, times: int = 1) -> None:
        """The next `times` enqueue requests meet `fault` (after the faults armed before)."""
        if fault not in FAULTS or times < 1:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.append((fault, times))

    def reset(self) -> None:
        with self._lock:
            self.incidents.clear()
            self.dropped.clear()
            self._faults.clear()
            self.received = 0

    def next_fault(self) -> str | None:
        with self._lock:
            self.received += 1
            if not self._faults:
                return None
            fault, times = self._faults[0]
            if times <= 1:
                self._faults.pop(0)
            else:
                self._faults[0] = (fault, times - 1)
            return fault

    def open_incident(self, dedup_key: str) -> Incident | None:
        for incident in reversed(self.incidents):
            if incident.dedup_key == dedup_key and incident.status in _OPEN:
                return incident
        return None

    def apply(self, event: dict[str, Any]) -> str:
        """Process a valid event as PagerDuty does; the dedup_key it answers with."""
        action = event["event_action"]
        recorded = {k: v for k, v in event.items() if k != "routing_key"}
        with self._lock:
            key = event.get("dedup_key") or uuid.uuid4().hex
            incident = self.open_incident(key)
            if action == "trigger":
                if incident is None:
                    payload = event["payload"]
                    incident = Incident(
                        number=len(self.incidents) + 1,
                        dedup_key=key,
                        status="triggered",
                        summary=payload["summary"],
                        source=payload["source"],
                        severity=payload["severity"],
                        custom_details=dict(payload.get("custom_details") or {}),
                        links=list(event.get("links") or []),
                    )
                    self.incidents.append(incident)
                incident.events.append(recorded)
            elif incident is None:
                self.dropped.append(recorded)
            else:
                incident.events.append(recorded)
                if action == "resolve":
                    incident.status = "resolved"
                elif incident.status == "triggered":
                    incident.status = "acknowledged"
            return str(key)

    def view(self) -> list[dict[str, Any]]:
        with self._lock:
            return [incident.view() for incident in self.incidents]


# -- validation, as PagerDuty words it ----------------------------------------------------------


def problems(event: dict[str, Any], routing_key: str) -> list[str]:
    """What PagerDuty would list in `errors` for `event`; empty when it is valid."""
    found: list[str] = []
    key = event.get("routing_key")
    if not isinstance(key, str) or not key:
        found.append("'routing_key' is missing or blank")
    else:
        if len(key) != 32:
            found.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        if not key.isascii() or not key.isalnum():
            found.append("'routing_key' cannot contain non-alphanumeric characters.")
        if not found and key != routing_key:
            found.append("Invalid routing key")
    action = event.get("event_action")
    if action not in ACTIONS:
        found.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and not isinstance(dedup_key, str):
        found.append("'dedup_key' must be a string")
    elif isinstance(dedup_key, str) and len(dedup_key) > MAX_DEDUP_KEY:
        found.append("'dedup_key' is too long (maximum is 255 characters)")
    elif action in ("acknowledge", "resolve") and not dedup_key:
        found.append("'dedup_key' is missing or blank")
    if action == "trigger":
        found += _payload_problems(event.get("payload"))
        found += _context_problems(event.get("links"), "links", "href")
        found += _context_problems(event.get("images"), "images", "src")
    return found


def _payload_problems(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or blank"]
    found = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        found.append("'summary' is missing or blank")
    elif len(summary) > MAX_SUMMARY:
        found.append("'summary' is too long (maiximum is 1024 characters)")  # sic, PagerDuty's
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        found.append("'source' is missing or blank")
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        found.append("'severity' is invalid (must be one of critical, error, warning, info)")
    stamp = payload.get("timestamp")
    if stamp is not None and not _iso8601(stamp):
        found.append("'timestamp' is invalid (must be an ISO 8601 date and time)")
    for name in ("component", "group", "class"):
        if payload.get(name) is not None and not isinstance(payload[name], str):
            found.append(f"'{name}' must be a string")
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        found.append("'custom_details' must be an object")
    return found


def _context_problems(items: Any, name: str, required: str) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"'{name}' must be an array"]
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get(required), str):
            return [f"'{name}' items must be objects with a '{required}' string"]
    return []


def _iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", value))
    except ValueError:
        return False
    return True


# -- the app ----------------------------------------------------------------------------------


class ConnectionDropped(Exception):
    """Raised after the answer's head went out, so the server closes the connection mid-answer."""


class _DroppedAnswer(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"80")],
            }
        )
        raise ConnectionDropped


def _invalid(errors: list[str]) -> JSONResponse:
    return JSONResponse(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status_code=400,
    )


def create_app(state: PagerDutyState) -> FastAPI:
    """The double's ASGI app over `state`."""
    app = FastAPI(title="PagerDuty Events API v2 sandbox")
    budget = BodyBudget(32 * MAX_EVENT_BYTES)

    @app.post("/v2/enqueue")
    async def enqueue(request: Request) -> Response:
        fault = state.next_fault()
        if fault == "429":
            return JSONResponse(
                {
                    "status": "throttle event",
                    "message": "Requests for this service are arriving "
                    "too quickly. Please retry later.",
                },
                status_code=429,
            )
        if fault == "500":
            return JSONResponse({"status": "error", "message": "Internal error"}, status_code=500)
        try:
            async with read_capped(request, limit=MAX_EVENT_BYTES, budget=budget) as raw:
                body = raw
        except BodyTooLarge:
            return _invalid(["Event object is too large (maximum is 512 KB)"])
        except TooBusy:
            return JSONResponse({"status": "error", "message": "busy"}, status_code=503)
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            return JSONResponse(
                {
                    "status": "Unrecognized object",
                    "message": "Event object format is unrecognized",
                    "errors": ["JSON parse error"],
                },
                status_code=400,
            )
        errors = problems(event, state.routing_key)
        if errors:
            return _invalid(errors)
        key = state.apply(event)
        if fault == "process_then_502":
            return JSONResponse({"status": "error", "message": "Bad gateway"}, status_code=502)
        if fault == "process_then_drop":
            return _DroppedAnswer()
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": key},
            status_code=202,
        )

    @app.get("/_sandbox/incidents")
    def incidents() -> dict[str, Any]:
        return {"incidents": state.view(), "received": state.received, "dropped": state.dropped}

    @app.post("/_sandbox/faults")
    async def arm(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            if not isinstance(body, dict):
                raise ValueError("an object is expected")
            state.arm(str(body.get("fault")), int(body.get("times", 1)))
        except (ValueError, TypeError):
            return JSONResponse({"error": f"fault must be one of {FAULTS}"}, status_code=400)
        return JSONResponse({"armed": body.get("fault")})

    @app.post("/_sandbox/reset")
    def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    return app
