"""The gateway's clock, injected: the prediction log's times and day partitions are testable."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FileClock:
    """The time written in a file by `write_clock_file`, for a demo or test that moves time by
    hand in another process. The file is read again only when it has been replaced."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._now: datetime | None = None

    def now(self) -> datetime:
        stat = os.stat(self._path)  # a missing file is an error: never fall back to real time
        key = (stat.st_ino, stat.st_mtime_ns)
        with self._lock:
            if key != self._seen or self._now is None:
                self._now = parse_clock_text(self._path.read_text(encoding="utf-8"))
                self._seen = key
            return self._now


def parse_clock_text(text: str) -> datetime:
    when = datetime.fromisoformat(text.strip())
    if when.tzinfo is None:
        raise ValueError("the clock file's time has no time zone")
    return when.astimezone(UTC)


def write_clock_file(path: Path, when: datetime) -> None:
    """Replace the file in one step: a reader sees the old time or the new one, never half."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(when.astimezone(UTC).isoformat(), encoding="utf-8")
    os.replace(partial, path)
