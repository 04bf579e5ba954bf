"""Group commit for the webhook inbox: deliveries arriving together are stored together.

Each request still waits for its own row to be committed before it is acknowledged (an ack is
a promise the delivery is durable), but one writer thread INSERTs whatever has queued up in one
statement and one transaction. Under load that turns many small transactions fighting over
SQLite's single write lock, or each paying PostgreSQL's commit, into a few large ones.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from bot.runtime.inbox import insert_new
from bot.store.db import Store
from bot.store.models import Delivery

log = logging.getLogger(__name__)

MAX_BATCH = 200


@dataclass(frozen=True)
class _Waiting:
    values: dict[str, Any]
    future: asyncio.Future[bool]
    loop: asyncio.AbstractEventLoop


def _settle(outcomes: list[tuple[asyncio.Future[bool], bool | BaseException]]) -> None:
    for future, outcome in outcomes:
        if future.done():  # the client went away; nothing to tell
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _tell(batch: list[_Waiting], outcomes: list[bool | BaseException]) -> None:
    """Hand the outcomes to each event loop in one call (one wake-up per loop, not per request)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], Any]]] = {}
    for waiting, outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(waiting.loop, []).append((waiting.future, outcome))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle, settled)


class IntakeWriter:
    """`await writer.record(values)`: True once stored, False for a delivery id seen before."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def record(self, values: dict[str, Any]) -> bool:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put(_Waiting(values, future, loop))
        return await future

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="shipyard-intake-writer", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._write(batch)

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            with self._store.engine.begin() as conn:
                # executemany with RETURNING: one statement, compiled once, whatever the batch.
                stored = set(
                    conn.execute(
                        insert_new(self._store).returning(Delivery.delivery_id),
                        [w.values for w in batch],
                    ).scalars()
                )
        except Exception as exc:  # the store is down: these requests fail, none is acknowledged
            log.warning("could not store %d deliveries: %s", len(batch), type(exc).__name__)
            _tell(batch, [exc] * len(batch))
            return
        outcomes: list[bool | BaseException] = []
        for waiting in batch:
            delivery_id = waiting.values["delivery_id"]
            outcomes.append(delivery_id in stored)
            stored.discard(delivery_id)  # the same id twice in one batch: the second is a repeat
        _tell(batch, outcomes)
