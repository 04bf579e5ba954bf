"""Sign a request body as Slack signs what it sends to an app (v0, HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, *, timestamp: str, body: bytes) -> str:
    """`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` under the app's signing secret."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, *, timestamp: str, body: bytes) -> dict[str, str]:
    """The headers Slack sends with a form-encoded request."""
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(secret, timestamp=timestamp, body=body),
    }
