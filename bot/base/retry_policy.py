"""When to retry a GitHub call, and after how long: a pure decision over status and headers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime


def retry_delay(
    *, status: int, headers: Mapping[str, str], attempt: int, now: datetime, max_wait: float
) -> float | None:
    """Seconds to wait before retrying, or None when retrying would not help.

    Follows GitHub's rate-limit guidance: `Retry-After` first, then `x-ratelimit-reset`
    when `x-ratelimit-remaining` is 0; a plain 403 is a permission error and is not retried.
    Server errors back off exponentially. Waits longer than `max_wait` are not attempted
    in-process: the inbox retries the whole delivery later instead.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    delay: float | None = None
    if status in (403, 429):
        if "retry-after" in lower:
            delay = _number(lower["retry-after"])
        elif lower.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lower:
            reset = _number(lower["x-ratelimit-reset"])
            delay = None if reset is None else max(0.0, reset - now.timestamp()) + 1.0
        elif status == 429:
            delay = 60.0
    elif status >= 500:
        delay = float(2**attempt)
    if delay is None or delay > max_wait:
        return None
    return delay


def _number(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
