"""Poll a condition with a deadline: how the demo and tests wait for the bot, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    condition: Callable[[], Any], *, timeout_s: float = 30, what: str = "", every_s: float = 0.02
) -> Any:
    """The first truthy value of `condition()`; TimeoutError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or condition}")
        time.sleep(every_s)
