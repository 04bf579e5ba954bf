"""The token a traffic router in front of the gateways (Shipyard's nginx router) sends with
every request it proxies. A gateway behind a router honours the router's `X-Shipyard-Variant`
only when the request carries it, so a client that reaches a gateway directly cannot choose the
shadow or the canary, or write rows into the shadow's prediction log."""

from __future__ import annotations

import hmac
import re
from pathlib import Path

HEADER = "x-shipyard-router-token"
# Letters, digits, - and _ only: it is written into nginx.conf between quotes.
PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def read_router_token(path: Path) -> str:
    """The token in `path` (one line); ValueError when it is not 16-128 safe characters."""
    with path.open("rb") as handle:
        text = handle.read(1024).decode("ascii", errors="replace").strip()
    if not PATTERN.fullmatch(text):
        raise ValueError(f"{path.name} must hold 16-128 letters, digits, - or _")
    return text


def carries(given: str | None, token: str) -> bool:
    """Whether a request's header is the router's token (compared in constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())
