"""Typed webhook events: payloads become these before any handler sees them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.github.objects import Installation, PullRequest, Repository, User


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Envelope(_Event):
    """What every event may carry; used to index the inbox."""

    action: str | None = None
    installation: Installation | None = None
    repository: Repository | None = None
    sender: User | None = None


class PullRequestEvent(_Event):
    action: str
    changes: dict[str, Any] | None = None  # on "edited": what changed (e.g. the base branch)
    number: int
    pull_request: PullRequest
    repository: Repository
    installation: Installation
    sender: User


def parse_envelope(payload: dict[str, Any]) -> Envelope:
    """Best-effort index fields; an odd payload still gets stored and acknowledged."""
    try:
        return Envelope.model_validate(payload)
    except ValidationError:
        return Envelope(
            action=payload.get("action") if isinstance(payload.get("action"), str) else None
        )
