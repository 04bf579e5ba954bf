"""The production route a canary rollout wants, from its row alone (pure).

The row is the intent and the router follows it: every visit computes the wanted route and
applies it (a no-op when already in effect), so a crash between writing the row and changing
traffic is finished by the next visit, and a step is never taken twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.routing import CanarySlot, Deployed, ModelRoute, ShadowSlot


@dataclass(frozen=True)
class Intent:
    """What a rollout row says about traffic."""

    status: str  # a CanaryStatus value
    version: str
    sha256: str
    previous_version: str
    previous_sha256: str
    weight: float  # the current step's share, 0..1


def wanted_route(intent: Intent, current: ModelRoute | None) -> ModelRoute | None:
    """The route to apply for `intent` given the one in effect; None: leave traffic alone.

    A route whose production is neither the version this rollout replaces nor its own belongs
    to someone else (an operator, a newer rollout): it is never overwritten (fail closed).
    """
    previous = Deployed(version=intent.previous_version, sha256=intent.previous_sha256)
    ours = Deployed(version=intent.version, sha256=intent.sha256)
    production = current.production if current is not None else previous
    shadow = current.shadow if current is not None else None
    canary = current.canary if current is not None else None
    if production.version not in (previous.version, ours.version):
        return None
    if intent.status in ("running", "paused"):
        if production.version != previous.version:
            return None
        mine = CanarySlot(version=ours.version, sha256=ours.sha256, weight=intent.weight)
        return ModelRoute(production=previous, shadow=_keep(shadow, ours), canary=mine)
    if intent.status == "promoted":
        return ModelRoute(production=ours, shadow=_keep(shadow, ours), canary=None)
    if intent.status in ("rolled_back", "stopped"):
        if production.version == ours.version:
            return None  # promoted already: undoing that is a new rollout, not this one
        if canary is not None and canary.version == ours.version:
            canary = None
        return ModelRoute(production=previous, shadow=shadow, canary=canary)
    return None


def _keep(shadow: ShadowSlot | None, ours: Deployed) -> ShadowSlot | None:
    """A shadow slot stays unless it holds the version about to answer live traffic."""
    return shadow if shadow is not None and shadow.version != ours.version else None
