"""The TrafficRouter port: put a model's route (production, shadow + mirror share, canary +
weight) into effect, read the route in effect, and take a shadow or canary slot away.

Every call returns only once the change is in effect, or raises `RouterError`. Applying the
route already in effect changes nothing (no new revision, no reload), so a retried effect is
harmless: the bot's outbox may run an apply more than once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from gateway.routing import ModelRoute


class Slot(StrEnum):
    SHADOW = "shadow"
    CANARY = "canary"


class RouterError(Exception):
    """A change that could not be put into effect; the route in effect is unchanged."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message if not detail else f"{message}: {detail}")
        self.message = message
        self.detail = detail


class TrafficRouter(Protocol):
    def apply(self, model: str, route: ModelRoute) -> None:
        """Put `route` into effect for `model`; a no-op when it already is."""
        ...

    def current(self, model: str) -> ModelRoute | None:
        """The route in effect for `model` (as the router rounds it), or None when it has none."""
        ...

    def remove_slot(self, model: str, slot: Slot) -> None:
        """Take the shadow or canary slot away (production keeps all traffic); a no-op if empty."""
        ...


def without_slot(route: ModelRoute, slot: Slot) -> ModelRoute:
    """`route` with `slot` emptied."""
    return route.model_copy(update={slot.value: None})


def configured_mirror_share(router: TrafficRouter, model: str) -> float:
    """The share of live requests the router is set to mirror to the shadow (0 without one).

    Shadow measures coverage against this share (shadow requests seen / production requests x
    share) instead of assuming the mirror delivered everything: nginx drops mirrored requests
    silently when it runs out of connections.
    """
    route = router.current(model)
    return route.shadow.mirror_share if route is not None and route.shadow is not None else 0.0
