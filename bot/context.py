"""What every handler gets: settings, store, GitHub, clock. Built once at start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.github_api import GitHubApp
from bot.settings import Settings
from bot.store.db import Store


@dataclass(frozen=True)
class BotContext:
    settings: Settings
    store: Store
    github: GitHubApp
    clock: Clock
    wake_evaluations: Wakeup = field(default_factory=lambda: Wakeup())


class Wakeup:
    """A call that wakes whoever subscribed (the evaluation workers), if anyone did."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def __call__(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()
