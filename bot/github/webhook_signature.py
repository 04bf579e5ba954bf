"""GitHub webhook signatures: HMAC-SHA256 over the raw body, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for this body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(*, body: bytes, header: str | None, secrets: list[bytes]) -> bool:
    """True when the header matches the body under any accepted secret (rotation).

    Only the SHA-256 header counts; the legacy SHA-1 `X-Hub-Signature` is ignored.
    """
    if not header or not header.startswith("sha256="):
        return False
    given = header.encode("ascii", "replace")
    ok = False
    for secret in secrets:
        # Compare against every secret so timing does not reveal which one matched.
        ok |= hmac.compare_digest(given, sign(secret, body).encode())
    return ok
