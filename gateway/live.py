"""The routing table in force: polled from its file (mtime, size, inode) so a change is served
within a poll interval without a restart; models are loaded before the new table is swapped in,
so a request sees either the old table or the new one, never a half-loaded one."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from gateway import names
from gateway.models import LoadedModel, ModelCache
from gateway.routing import ModelRoute, Routing, load_routing

log = logging.getLogger("shipyard.gateway")


@dataclass(frozen=True)
class ActiveRoute:
    """One model's slots with their loaded models (None where loading failed)."""

    route: ModelRoute
    production: LoadedModel | None
    canary: LoadedModel | None
    shadow: LoadedModel | None
    problems: dict[str, str] = field(default_factory=dict)  # variant -> short reason

    @property
    def ready(self) -> bool:
        # A canary that failed to load gets no traffic; only production decides readiness.
        return self.production is not None

    def serves(self, version: str) -> bool:
        """`version` is loaded here and answers requests (as production or as the canary)."""
        canary = self.route.canary
        return (self.production is not None and self.route.production.version == version) or (
            self.canary is not None and canary is not None and canary.version == version
        )


@dataclass(frozen=True)
class ActiveTable:
    revision: int
    routes: dict[str, ActiveRoute]

    @property
    def ready(self) -> bool:
        return all(route.ready for route in self.routes.values())


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def activate(routing: Routing, cache: ModelCache) -> ActiveTable:
    """Load every routed version (cached by sha256) and pair it with its slot."""
    wanted = {
        slot.sha256
        for route in routing.models.values()
        for slot in (route.production, route.canary, route.shadow)
        if slot is not None
    }
    cache.retain(wanted)
    routes: dict[str, ActiveRoute] = {}
    for model, route in routing.models.items():
        loaded: dict[str, LoadedModel | None] = {}
        problems: dict[str, str] = {}
        slots = (
            (names.VARIANT_PRODUCTION, route.production),
            (names.VARIANT_CANARY, route.canary),
            (names.VARIANT_SHADOW, route.shadow),
        )
        for variant, slot in slots:
            if slot is None:
                loaded[variant] = None
                continue
            result = cache.get(model, slot)
            if isinstance(result, str):
                problems[variant] = result
                log.warning("%s %s %s not loaded: %s", model, variant, slot.version, result)
                loaded[variant] = None
            else:
                loaded[variant] = result
        routes[model] = ActiveRoute(
            route,
            loaded[names.VARIANT_PRODUCTION],
            loaded[names.VARIANT_CANARY],
            loaded[names.VARIANT_SHADOW],
            problems,
        )
    return ActiveTable(routing.revision, routes)


class RoutingWatcher:
    """Polls the routing file and swaps in a newly loaded table when it changes."""

    def __init__(
        self, path: Path, cache: ModelCache, *, every_s: float = 0.5, retry_s: float = 10.0
    ) -> None:
        self._path = path
        self._cache = cache
        self._every_s = every_s
        self._retry_s = retry_s
        self._attempted = 0.0
        self._seen: tuple[int, int, int] | str | None = "never"
        self.table = ActiveTable(0, {})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Reload if the file changed, or retry a table whose models did not all load (a bundle
        published after the table named it); True when a new table was swapped in."""
        signature = _signature(self._path)
        now = time.monotonic()
        if signature == self._seen and not (
            self._has_problems() and now - self._attempted >= self._retry_s
        ):
            return False
        self._attempted = now
        try:
            routing = load_routing(self._path)
        except (ValidationError, ValueError, OSError):
            # A half-written or invalid table keeps the one in force; retried next poll.
            log.warning(
                "routing table %s is invalid; keeping revision %s", self._path, self.table.revision
            )
            return False
        self.table = activate(routing, self._cache)
        self._seen = signature
        return True

    def _has_problems(self) -> bool:
        return any(route.problems for route in self.table.routes.values())

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="routing-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self.refresh()
            except Exception:  # a watcher that dies would freeze routing silently
                log.exception("routing refresh failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
