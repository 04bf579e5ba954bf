"""Short leases kept alive by a heartbeat while the work runs.

A claimed row (delivery, evaluation, deadline) carries `lease_until` and a `claim_token`.
While its worker is alive a background thread pushes `lease_until` forward; when the
process dies (or shuts down) the heartbeat stops, the lease lapses within `duration`, and
another worker or replica takes the row over. A worker whose token no longer matches has
lost the row: it must stop and must not write its outcome.

One heartbeat thread per process renews every open lease when its beat is due. Most work
(a webhook delivery) ends long before its first beat, so entering and leaving a lease costs
no thread start and join — at hundreds of deliveries a second those, each a hand-over of the
GIL, were most of a worker's time.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from bot.base.clock import Clock
from bot.store.db import Store

if TYPE_CHECKING:
    from bot.runtime.context import BotContext

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker owns this row now; the work must stop without publishing."""


class Lease:
    """`with Lease(...) as lease:` renews the row's lease every `every_s` seconds (real time)."""

    def __init__(
        self,
        *,
        store: Store,
        model: Any,
        pk: int,
        token: str,
        active_status: str,
        clock: Clock,
        duration: timedelta,
        every_s: float,
        stopping: threading.Event | None = None,
    ) -> None:
        self._store = store
        self._model = model
        self._pk = pk
        self._token = token
        self._active = active_status
        self._clock = clock
        self._duration = duration
        self._every_s = every_s
        self._stopping = stopping or threading.Event()
        self._done = threading.Event()
        self._lost = threading.Event()

    @property
    def token(self) -> str:
        return self._token

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def __enter__(self) -> Lease:
        _HEARTBEAT.add(self, self._every_s)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        _HEARTBEAT.remove(self)

    def check(self) -> None:
        """Raise LeaseLost when the row is no longer ours (asks the store, not only the flag)."""
        if self.lost or not self.renew():
            raise LeaseLost(f"lease on {self._model.__tablename__} {self._pk} was taken over")

    def renew(self) -> bool:
        """Push the lease forward; False when the row was taken over or finished meanwhile."""
        m = self._model
        until = self._clock.now() + self._duration
        with self._store.session() as session:
            moved = session.execute(
                update(m)
                .where(
                    m.id == self._pk,
                    m.claim_token == self._token,
                    m.status == self._active,
                    # A later lease_until is a back-off someone chose; never shorten it.
                    or_(m.lease_until.is_(None), m.lease_until < until),
                )
                .values(lease_until=until)
            )
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                return True
            row = session.execute(select(m.claim_token, m.status).where(m.id == self._pk)).first()
        if row is not None and row[0] == self._token and row[1] == self._active:
            return True  # a back-off runs further than our lease: still ours
        if row is None or row[0] not in (self._token, None):
            self._lost.set()  # another claimer's token: taken over
        # A cleared token is a run that was finished or cancelled: not ours any more, but not
        # taken over either (`check` still stops a worker that goes on).
        return False

    def beat(self) -> bool:
        """One heartbeat: renew unless the work ended; False when there is nothing more to do."""
        if self._done.is_set():
            return False
        if self._stopping.is_set():
            return False  # shutting down: let the lease lapse so another replica takes over
        try:
            if not self.renew():
                if self.lost and not self._done.is_set():
                    log.warning("lost the lease on %s %s", self._model.__tablename__, self._pk)
                return False
        except Exception as exc:  # the store blinked; the lease still runs, try again
            log.warning("could not renew lease: %s", type(exc).__name__)
        return not self._done.is_set()


class _Heartbeat:
    """The process's one heartbeat thread: renews each open lease every `every_s` seconds."""

    def __init__(self) -> None:
        self._due: dict[Lease, tuple[float, float]] = {}  # open lease -> (next beat, every_s)
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wake_at: float | None = None  # when the thread next looks; None: not before an add

    def add(self, lease: Lease, every_s: float) -> None:
        with self._changed:
            when = time.monotonic() + every_s
            self._due[lease] = (when, every_s)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="shipyard-heartbeat", daemon=True
                )
                self._thread.start()
            if self._wake_at is None or when < self._wake_at:
                self._changed.notify()  # only when it moves the next beat earlier

    def remove(self, lease: Lease) -> None:
        with self._changed:
            self._due.pop(lease, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [lease for lease, (when, _) in self._due.items() if when <= now]
                if not due:
                    self._wake_at = min((when for when, _ in self._due.values()), default=None)
                    self._changed.wait(None if self._wake_at is None else self._wake_at - now)
                    continue
                self._wake_at = now  # beating: an add need not wake the thread
            for lease in due:  # outside the lock: a slow store never blocks entering a lease
                more = lease.beat()
                with self._changed:
                    if lease in self._due:
                        every_s = self._due[lease][1]
                        if more:
                            self._due[lease] = (time.monotonic() + every_s, every_s)
                        else:
                            del self._due[lease]


_HEARTBEAT = _Heartbeat()


def lease_of(ctx: BotContext, *, model: Any, pk: int, token: str, active_status: str) -> Lease:
    """The lease a worker of this bot holds on a row it just claimed."""
    return Lease(
        store=ctx.store,
        model=model,
        pk=pk,
        token=token,
        active_status=active_status,
        clock=ctx.clock,
        duration=timedelta(seconds=ctx.settings.lease_s),
        every_s=ctx.settings.lease_heartbeat_s,
        stopping=ctx.stopping,
    )
