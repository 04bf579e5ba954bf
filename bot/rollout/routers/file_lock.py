"""An exclusive lock on a file beside the one being changed, so concurrent appliers (threads,
processes, bot replicas on one host) take turns instead of losing each other's change."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.rollout.routers.router import RouterError


@contextmanager
def exclusive(path: Path, *, timeout_s: float) -> Iterator[None]:
    """Hold `flock(LOCK_EX)` on `path` (created if absent); RouterError after `timeout_s`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RouterError(
                        "another change to the routing is still in progress", detail=str(path)
                    ) from None
                time.sleep(0.005)  # polling the lock with a deadline
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
