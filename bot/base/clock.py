"""Injected time: the bot never reads the wall clock or sleeps except through a Clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """Time that moves only when told to; `sleep` advances it instead of waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()
        self._followers: list[Callable[[datetime], None]] = []
        self.slept: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def follow(self, follower: Callable[[datetime], None]) -> None:
        """Call `follower` with the time now and after every move, in order (another process
        keeping the same time, say)."""
        with self._lock:
            self._followers.append(follower)
            follower(self._now)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta
            for follower in self._followers:
                follower(self._now)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(timedelta(seconds=seconds))
