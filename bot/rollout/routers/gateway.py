"""The embedded default router: the routing table file Shipyard's gateways poll.

A change is read, merged and written under a lock beside the table, so two appliers never lose
each other's change; `save_routing` renames a complete file into place, so a polling gateway
never reads half a table. A real change raises the table's revision; the same route twice is a
no-op. "In effect" means the table on disk says so: gateways pick it up within their poll
interval, without a restart.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from bot.rollout.routers.file_lock import exclusive
from bot.rollout.routers.router import RouterError, Slot, without_slot
from gateway.routing import ModelRoute, Routing, load_routing, save_routing


class GatewayRouter:
    def __init__(self, table: Path, *, lock_timeout_s: float = 10.0) -> None:
        self.table = table
        self._lock = table.with_name(table.name + ".lock")
        self._lock_timeout_s = lock_timeout_s

    def apply(self, model: str, route: ModelRoute) -> None:
        """Put `route` into the table for `model`; a no-op when it is already there."""
        self._change(model, route)

    def current(self, model: str) -> ModelRoute | None:
        """The route the table holds for `model`."""
        return self._load().models.get(model)

    def remove_slot(self, model: str, slot: Slot) -> None:
        """Empty `slot` of `model`'s route; a no-op when the model has no route or the slot."""
        with exclusive(self._lock, timeout_s=self._lock_timeout_s):
            route = self._load().models.get(model)
            if route is not None:
                self._write(model, without_slot(route, slot))

    def revision(self) -> int:
        """The table's revision (raised by every real change)."""
        return self._load().revision

    def _change(self, model: str, route: ModelRoute) -> None:
        with exclusive(self._lock, timeout_s=self._lock_timeout_s):
            self._write(model, route)

    def _write(self, model: str, route: ModelRoute) -> None:
        routing = self._load()
        if routing.models.get(model) == route:
            return
        try:
            changed = Routing(
                revision=routing.revision + 1, models={**routing.models, model: route}
            )
        except ValidationError as exc:
            raise RouterError("the route is not valid", detail=_first_error(exc)) from None
        try:
            save_routing(self.table, changed)
        except OSError as exc:
            raise RouterError("the routing table could not be written", detail=str(exc)) from None

    def _load(self) -> Routing:
        try:
            return load_routing(self.table)
        except (OSError, ValidationError) as exc:
            # Fail closed: a table nobody can read is never taken for an empty one.
            raise RouterError(
                "the routing table could not be read", detail=str(exc)[:300]
            ) from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
