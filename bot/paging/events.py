"""PagerDuty Events API v2 bodies, built so PagerDuty accepts them whatever text they carry.

Pure: no I/O. A `Page` is what the rollout wants to tell on-call; `trigger_event`,
`acknowledge_event` and `resolve_event` turn it into the JSON PagerDuty's `/v2/enqueue` takes,
within its limits: summary ≤ 1,024 characters, dedup_key ≤ 255, the whole event ≤ 512 KB.
Text from PRs and people is plain text to PagerDuty (no markup), so it is only bounded and
stripped of control characters here.

The bodies never hold the routing key: the client adds it as it sends (bot/paging/pagerduty.py),
so the outbox row that stores a body never stores the secret.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Severity = Literal["critical", "error", "warning", "info"]
Action = Literal["trigger", "acknowledge", "resolve"]

MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
# PagerDuty documents 512 KB; the lower reading (512,000 bytes, as Alertmanager uses) is safe
# whichever PagerDuty means. Room is kept for the routing key the client adds.
MAX_EVENT_BYTES = 512_000
_ROUTING_KEY_ROOM = 64
MAX_FIELD = 255  # source, component, group, class: PagerDuty shows them as one line
MAX_LINKS = 10
MAX_LINK_HREF = 2048
MAX_LINK_TEXT = 256
# custom_details: each string, list and object is bounded before the whole event is measured.
MAX_DETAIL_STRING = 4000
MAX_DETAIL_ITEMS = 50
MAX_DETAIL_DEPTH = 4
MAX_DETAIL_NODES = 2000
TRUNCATED_FIELD = "shipyard_truncated"  # names the details that were clipped or left out

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HASH_LEN = 64  # sha256 hex


def plain(text: str, limit: int) -> str:
    """`text` without control characters, at most `limit` characters (clipped with "…")."""
    text = _CONTROL.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dedup_key(raw: str) -> str:
    """A dedup_key PagerDuty accepts: `raw` itself when it fits, else its head and a hash of
    the whole, so the same raw key always gives the same dedup_key and different tails differ."""
    raw = _CONTROL.sub("", raw)
    if not raw:
        raise ValueError("a dedup_key cannot be empty")
    if len(raw) <= MAX_DEDUP_KEY:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()
    return raw[: MAX_DEDUP_KEY - _HASH_LEN - 1] + "~" + digest


class Link(BaseModel):
    """A link shown on the incident: http(s) only, bounded."""

    model_config = ConfigDict(frozen=True)

    href: str
    text: str = ""


class Page(BaseModel):
    """What on-call is paged with. `dedup_key` names the incident: a trigger with the key of an
    open incident adds to it, and acknowledge/resolve act on it."""

    model_config = ConfigDict(frozen=True)

    dedup_key: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    source: str = Field(min_length=1)
    severity: Severity
    custom_details: dict[str, Any] = Field(default_factory=dict)
    links: tuple[Link, ...] = ()
    component: str | None = None
    group: str | None = None
    event_class: str | None = None
    timestamp: datetime | None = None

    @field_validator("summary", "source")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not _CONTROL.sub("", value).strip():
            raise ValueError("must not be blank")
        return value


def trigger_event(page: Page) -> dict[str, Any]:
    """The trigger body for `page` (without routing_key), within PagerDuty's limits."""
    payload: dict[str, Any] = {
        "summary": plain(page.summary, MAX_SUMMARY),
        "source": plain(page.source, MAX_FIELD),
        "severity": page.severity,
    }
    if page.timestamp is not None:
        stamp = page.timestamp if page.timestamp.tzinfo else page.timestamp.replace(tzinfo=UTC)
        payload["timestamp"] = stamp.astimezone(UTC).isoformat()
    for name, value in (
        ("component", page.component),
        ("group", page.group),
        ("class", page.event_class),
    ):
        if value:
            payload[name] = plain(value, MAX_FIELD)
    body: dict[str, Any] = {
        "event_action": "trigger",
        "dedup_key": dedup_key(page.dedup_key),
        "payload": payload,
    }
    links = _links(page.links)
    if links:
        body["links"] = links
    payload["custom_details"] = _fit_details(page.custom_details, body)
    return body


def acknowledge_event(key: str) -> dict[str, Any]:
    """The acknowledge body for the incident `key` names (without routing_key)."""
    return {"event_action": "acknowledge", "dedup_key": dedup_key(key)}


def resolve_event(key: str) -> dict[str, Any]:
    """The resolve body for the incident `key` names (without routing_key)."""
    return {"event_action": "resolve", "dedup_key": dedup_key(key)}


def event_bytes(body: Mapping[str, Any]) -> int:
    """The size of `body` as it is sent (compact JSON, UTF-8)."""
    return len(_dumps(body))


# -- bounding ---------------------------------------------------------------------------------


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _links(links: Sequence[Link]) -> list[dict[str, str]]:
    out = []
    for link in links:
        href = _CONTROL.sub("", link.href).strip()
        if not re.match(r"^https?://[^\s/]+", href, re.IGNORECASE) or len(href) > MAX_LINK_HREF:
            continue  # a link PagerDuty would show must be a web address, never a script
        item = {"href": href}
        if link.text:
            item["text"] = plain(link.text, MAX_LINK_TEXT)
        out.append(item)
        if len(out) == MAX_LINKS:
            break
    return out


class _Walk:
    """Bounds one custom_details tree, noting every place it clipped."""

    def __init__(self) -> None:
        self.nodes = 0
        self.clipped: list[str] = []

    def value(self, value: Any, path: str, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_DETAIL_NODES:
            self.clipped.append(path)
            return "(omitted)"
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if value == value and abs(value) != float("inf") else str(value)
        if isinstance(value, str):
            if len(value) > MAX_DETAIL_STRING:
                self.clipped.append(path)
            return plain(value, MAX_DETAIL_STRING)
        if isinstance(value, Mapping | list | tuple) and depth >= MAX_DETAIL_DEPTH:
            self.clipped.append(path)
            return "(omitted: nested too deep)"
        if isinstance(value, Mapping):
            items = list(value.items())
            if len(items) > MAX_DETAIL_ITEMS:
                self.clipped.append(path)
            return {
                plain(str(k), 200): self.value(v, f"{path}.{plain(str(k), 60)}", depth + 1)
                for k, v in items[:MAX_DETAIL_ITEMS]
            }
        if isinstance(value, list | tuple):
            if len(value) > MAX_DETAIL_ITEMS:
                self.clipped.append(path)
            return [
                self.value(v, f"{path}[{i}]", depth + 1)
                for i, v in enumerate(value[:MAX_DETAIL_ITEMS])
            ]
        return plain(str(value), MAX_DETAIL_STRING)


def _fit_details(details: Mapping[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """custom_details bounded, then its largest values left out until the event fits."""
    walk = _Walk()
    fitted: dict[str, Any] = {}
    for key, value in list(details.items())[:MAX_DETAIL_ITEMS]:
        name = plain(str(key), 200)
        fitted[name] = walk.value(value, name, 1)
    if len(details) > MAX_DETAIL_ITEMS:
        walk.clipped.append(f"(keys beyond the first {MAX_DETAIL_ITEMS})")
    omitted: list[str] = []  # whole values left out to fit: named first in the note

    def with_note() -> dict[str, Any]:
        changed = (omitted + walk.clipped)[:MAX_DETAIL_ITEMS]
        return {**fitted, **({TRUNCATED_FIELD: changed} if changed else {})}

    budget = MAX_EVENT_BYTES - _ROUTING_KEY_ROOM
    while True:
        body["payload"]["custom_details"] = with_note()
        candidates = {k: len(_dumps(v)) for k, v in fitted.items() if k not in omitted}
        if event_bytes(body) <= budget or not candidates:
            return dict(body["payload"]["custom_details"])
        largest = max(candidates, key=lambda k: (candidates[k], k))
        fitted[largest] = f"(omitted: {candidates[largest]} bytes)"
        omitted.append(largest)
