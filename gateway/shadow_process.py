"""The parent's side of the shadow worker process: send a batch of mirrored requests without
waiting for its answer, read the answers (a batch's totals) on a thread of their own, and restart
a worker that died.

Requests sent and not yet answered are bounded (`in_flight`): past the bound `submit` blocks the
mirror's feeder thread — never a production request — so the mirror buffer fills and drops with
`queue_full` as before. Requests in flight when the worker dies are counted as `shadow_crashed`;
those left when it will not stop in time, as `shutdown`. Shadow prediction-log rows the worker
buffered and had not written when it died (at most its flush interval) are lost uncounted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from gateway import shadow_worker
from gateway.mirror import DROP_CRASHED, DROP_SHUTDOWN
from gateway.shadow_batch import ShadowBatch
from gateway.shadow_totals import ShadowTotals

log = logging.getLogger("shipyard.gateway")

RESTART_AFTER_S = 1.0  # a worker that dies at once is not restarted in a tight loop

# (model, version, the batch's totals): the worker scored, logged and summed it
Answered = Callable[[str, str, ShadowTotals], None]


class ShadowProcess:
    def __init__(
        self,
        *,
        store_url: str,
        cache_dir: Path,
        answered: Answered,
        drop: Callable[[str, str, int], None],
        log_dropped: Callable[[str, int], None],
        flush_rows: int = 10_000,
        flush_every_s: float = 5.0,
        in_flight: int = 1024,
        niceness: int = 5,
    ) -> None:
        self._store_url = store_url
        self._cache_dir = cache_dir
        self._answered = answered
        self._drop = drop
        self._niceness = niceness
        self._log_dropped = log_dropped
        self._flush = (flush_rows, flush_every_s)
        self._limit = max(1, in_flight)
        self._in_flight = 0
        self._room = threading.Condition()  # guards _in_flight
        self._lock = threading.Lock()  # pending, msg and the current connection
        self._send_lock = threading.Lock()  # a batch's two messages go out together
        self._pending: dict[int, tuple[str, str, int]] = {}  # msg -> (model, version, requests)
        self._msg = 0
        self._stopping = threading.Event()
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._conn: Connection  # set by start()
        self._proc: BaseProcess
        self._started_at = 0.0
        self._reader = threading.Thread(target=self._read, name="shadow-results", daemon=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def _spawn(self) -> tuple[Connection, BaseProcess]:
        ours, theirs = self._context.Pipe(duplex=True)
        proc = self._context.Process(
            target=shadow_worker.serve,
            args=(theirs, self._store_url, str(self._cache_dir), self._niceness, *self._flush),
            name="shipyard-shadow",
            daemon=True,
        )
        proc.start()
        theirs.close()  # only the child holds its end: its death reads as EOF here
        return ours, proc

    def start(self) -> None:
        self._conn, self._proc = self._spawn()
        self._started_at = time.monotonic()
        self._reader.start()

    def submit(self, batch: ShadowBatch) -> None:
        """Send to the worker; blocks (the feeder thread) only while `in_flight` are unanswered."""
        start = 0  # the first row of the part
        for first in range(0, len(batch.jobs), self._limit):
            jobs = batch.jobs[first : first + self._limit]
            end = start + sum(job.rows for job in jobs)
            part = ShadowBatch(batch.model, batch.version, batch.sha256, jobs, batch.x[start:end])
            self._send(part)
            start = end

    def _send(self, batch: ShadowBatch) -> None:
        n = len(batch.jobs)
        with self._room:
            while self._in_flight + n > self._limit:
                if self._stopping.is_set():
                    self._drop(batch.model, DROP_SHUTDOWN, n)
                    return
                self._room.wait(0.5)
            self._in_flight += n
        with self._send_lock:
            with self._lock:
                self._msg += 1
                msg = self._msg
                self._pending[msg] = (batch.model, batch.version, n)
                conn = self._conn
            header, data = batch.encode(msg)
            try:
                conn.send_bytes(header)
                conn.send_bytes(data)
            except (OSError, ValueError):  # the worker died; the reader restarts it
                self._lose(msg, DROP_CRASHED)

    def _settled(self, n: int) -> None:
        with self._room:
            self._in_flight -= n
            self._room.notify_all()

    def _lose(self, msg: int, reason: str) -> None:
        with self._lock:
            pending = self._pending.pop(msg, None)
        if pending is not None:
            model, _, n = pending
            self._settled(n)
            self._drop(model, reason, n)

    def _lose_all(self, reason: str) -> None:
        with self._lock:
            lost, self._pending = self._pending, {}
        for model, _, n in lost.values():
            self._settled(n)
            self._drop(model, reason, n)

    def _read(self) -> None:
        while True:
            conn = self._conn
            try:
                message = conn.recv_bytes()
            except (EOFError, OSError):
                if self._stopping.is_set():
                    self._lose_all(DROP_SHUTDOWN)
                    return
                self._restart()
                continue
            answer = json.loads(message)
            for reason, rows in answer["log_dropped"].items():
                self._log_dropped(str(reason), int(rows))
            if answer["msg"] is not None:
                self._settle(int(answer["msg"]), ShadowTotals.from_json(answer["totals"]))

    def _settle(self, msg: int, totals: ShadowTotals) -> None:
        with self._lock:
            pending = self._pending.pop(msg, None)
        if pending is None:
            return
        model, version, n = pending
        self._settled(n)
        try:
            self._answered(model, version, totals)
        except Exception:  # the reader must outlive any counting failure
            log.exception("shadow answers for %s not counted", model)

    def _restart(self) -> None:
        log.warning("shadow worker (pid %s) died; restarting it", self._proc.pid)
        self._proc.join(timeout=1)
        wait = RESTART_AFTER_S - (time.monotonic() - self._started_at)
        if wait > 0:
            self._stopping.wait(wait)
        if self._stopping.is_set():
            self._lose_all(DROP_CRASHED)  # stopping: no new worker; the reader then returns
            return
        conn, proc = self._spawn()
        with self._lock:
            lost, self._pending = self._pending, {}
            old, self._conn, self._proc = self._conn, conn, proc
        self._started_at = time.monotonic()
        old.close()
        for model, _, n in lost.values():
            self._settled(n)
            self._drop(model, DROP_CRASHED, n)

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Let the worker answer what it was sent (within the timeout), then end it."""
        self._stopping.set()
        # A worker already dead cannot take it: the reader sees EOF instead.
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            self._conn.send_bytes(shadow_worker.STOP)
        self._reader.join(timeout=timeout_s)
        if self._reader.is_alive():
            self._proc.terminate()  # the reader sees EOF and counts the rest as shutdown
            self._reader.join(timeout=timeout_s)
        self._proc.join(timeout=timeout_s)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=timeout_s)
        self._lose_all(DROP_SHUTDOWN)
        self._conn.close()
