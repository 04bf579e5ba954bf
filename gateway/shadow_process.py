"""The parent's side of the shadow worker process: send a mirrored request without waiting for
its answer, read answers on a thread of their own, and restart a worker that died.

Requests sent and not yet answered are bounded (`in_flight`): past the bound `submit` blocks the
mirror's feeder thread — never a production request — so the mirror queue fills and drops with
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
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gateway import choice, shadow_worker
from gateway.mirror import DROP_CRASHED, DROP_NOT_LOADED, DROP_SHUTDOWN, MirrorJob
from gateway.models import LoadedModel

log = logging.getLogger("shipyard.gateway")

RESTART_AFTER_S = 1.0  # a worker that dies at once is not restarted in a tight loop


@dataclass(frozen=True)
class Pending:
    job: MirrorJob
    shadow: LoadedModel
    x: NDArray[np.float32]  # in the shadow's feature order


# (pending, scores or None, error or None, seconds of inference); the worker logged the row
Answered = Callable[[Pending, NDArray[np.float64] | None, str | None, float], None]


class ShadowProcess:
    def __init__(
        self,
        *,
        store_url: str,
        cache_dir: Path,
        answered: Answered,
        drop: Callable[[str, str], None],
        log_dropped: Callable[[str, int], None],
        log_share: float = 1.0,
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
        self._log_share = log_share
        self._flush = (flush_rows, flush_every_s)
        self._slots = threading.BoundedSemaphore(in_flight)
        self._lock = threading.Lock()  # pending, seq and the current connection
        self._send_lock = threading.Lock()  # a job's two messages go out together
        self._pending: dict[int, Pending] = {}
        self._seq = 0
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

    def submit(self, batch: list[Pending]) -> None:
        """Send to the worker; blocks (the feeder thread) only while `in_flight` are unanswered."""
        ready: list[Pending] = []
        for pending in batch:
            while not self._slots.acquire(timeout=0.5):
                if self._stopping.is_set():
                    self._drop(pending.job.model, DROP_SHUTDOWN)
                    break
            else:
                ready.append(pending)
        groups: dict[tuple[str, str, str, int], list[Pending]] = {}
        for pending in ready:
            key = (
                pending.job.model,
                pending.shadow.version,
                pending.shadow.sha256,
                pending.x.shape[1],
            )
            groups.setdefault(key, []).append(pending)
        for (model, version, sha256, _), group in groups.items():
            with self._send_lock:
                with self._lock:
                    first = self._seq + 1
                    self._seq += len(group)
                    seqs = list(range(first, first + len(group)))
                    self._pending.update(zip(seqs, group, strict=True))
                    conn = self._conn
                jobs = [
                    shadow_worker.WorkerJob(
                        seq,
                        p.job.request_id,
                        p.job.at,
                        choice.sampled(self._log_share, model=model, request_id=p.job.request_id),
                        p.x,
                        p.job.context,
                    )
                    for seq, p in zip(seqs, group, strict=True)
                ]
                header, data = shadow_worker.encode_batch(
                    jobs,
                    model=model,
                    version=version,
                    sha256=sha256,
                )
                try:
                    conn.send_bytes(header)
                    conn.send_bytes(data)
                except (OSError, ValueError):  # the worker died; the reader restarts it
                    for seq in seqs:
                        self._lose(seq, DROP_CRASHED)

    def _lose(self, seq: int, reason: str) -> None:
        with self._lock:
            pending = self._pending.pop(seq, None)
        if pending is not None:
            self._slots.release()
            self._drop(pending.job.model, reason)

    def _lose_all(self, reason: str) -> None:
        with self._lock:
            lost, self._pending = self._pending, {}
        for pending in lost.values():
            self._slots.release()
            self._drop(pending.job.model, reason)

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
            for result in answer["results"]:
                self._settle(result)
            for reason, rows in answer["log_dropped"].items():
                self._log_dropped(str(reason), int(rows))

    def _settle(self, result: dict[str, Any]) -> None:
        with self._lock:
            pending = self._pending.pop(int(result["seq"]), None)
        if pending is None:
            return
        self._slots.release()
        error = result["error"]
        if error == shadow_worker.NOT_LOADED:
            self._drop(pending.job.model, DROP_NOT_LOADED)
            return
        raw = result["scores"]
        scores = None if raw is None else np.asarray(raw, dtype=np.float64)
        try:
            self._answered(pending, scores, error, float(result["seconds"]))
        except Exception:  # the reader must outlive any logging failure
            log.exception("shadow answer for %s not recorded", pending.job.model)

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
        for pending in lost.values():
            self._slots.release()
            self._drop(pending.job.model, DROP_CRASHED)

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
