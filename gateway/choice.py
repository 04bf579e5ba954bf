"""Which variant answers a request, whether it is mirrored, whether it is logged: pure functions
of the request id, so a retry with the same id gets the same answer on any gateway process."""

from __future__ import annotations

import hashlib
import re
import uuid

from gateway import names
from gateway.routing import ModelRoute

REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def request_id(given: str | None) -> str:
    """The caller's id when it is a safe token, otherwise a new one."""
    if given and REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def unit(purpose: str, model: str, request_id: str) -> float:
    """A uniform number in [0, 1) from the request id, independent per purpose."""
    digest = hashlib.sha256(f"{purpose}\0{model}\0{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def answering_variant(route: ModelRoute, *, model: str, request_id: str, canary_ok: bool) -> str:
    """Production, or the canary for its weight's share of request ids."""
    canary = route.canary
    if canary is None or not canary_ok or canary.weight <= 0:
        return names.VARIANT_PRODUCTION
    if canary.weight >= 1 or unit("canary", model, request_id) < canary.weight:
        return names.VARIANT_CANARY
    return names.VARIANT_PRODUCTION


def routed_variant(header: str | None) -> str:
    """The slot a traffic router in front named (`X-Shipyard-Variant`); production otherwise."""
    return header if header in names.VARIANTS else names.VARIANT_PRODUCTION


def mirrored(route: ModelRoute, *, model: str, request_id: str) -> bool:
    shadow = route.shadow
    if shadow is None or shadow.mirror_share <= 0:
        return False
    # A share of 1 needs no hash: a sha256 per request is a visible part of mirroring's cost.
    return shadow.mirror_share >= 1 or unit("mirror", model, request_id) < shadow.mirror_share


def sampled(share: float, *, model: str, request_id: str) -> bool:
    """Log sampling by request id, so a production answer and its mirror are kept together."""
    return share >= 1.0 or unit("log", model, request_id) < share
