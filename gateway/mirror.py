"""Mirroring to the shadow, off the request path: a bounded buffer and background workers.

`offer` never blocks and does almost nothing: a deque append (a full buffer drops the request
and counts it), and a wake-up only when the buffer was empty. A worker takes every job waiting
at once (a batch); with `linger_s` it then pauses, so under load it wakes a few hundred times a
second rather than once per request — each wake-up competes with the event loop for the GIL. A
slow or failing shadow only ever slows its own worker, never a production answer.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from gateway.metrics import GatewayMetrics
from gateway.protocol import Context

log = logging.getLogger("shipyard.gateway")

# Reasons a mirrored request is dropped (the `reason` label of names.MIRROR_DROPPED).
DROP_QUEUE_FULL = "queue_full"
DROP_NOT_LOADED = "shadow_not_loaded"
DROP_SHUTDOWN = "shutdown"
DROP_CRASHED = "shadow_crashed"  # in flight in the shadow worker process when it died


@dataclass(frozen=True)
class MirrorJob:
    model: str
    request_id: str
    sha256: str  # the shadow bundle chosen when the request arrived
    x: NDArray[np.float32]
    features: list[str]  # the columns of x, in order (the shadow may order them differently)
    at: datetime  # when the request arrived: its shadow row shares the production row's time
    context: Context | None = None  # logged with the shadow's rows as with production's


class Mirror:
    def __init__(
        self,
        *,
        metrics: GatewayMetrics,
        handle: Callable[[list[MirrorJob]], None],
        size: int = 1024,
        workers: int = 1,
        linger_s: float = 0.0,
        batch: int = 256,
    ) -> None:
        self._metrics = metrics
        self._handle = handle
        self._size = max(1, size)
        self._jobs: collections.deque[MirrorJob] = collections.deque()
        self._wake = threading.Event()
        self._workers = [
            threading.Thread(target=self._run, name=f"mirror-{i}", daemon=True)
            for i in range(workers)
        ]
        self._closed = False
        self._linger_s = linger_s
        self._batch = batch

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    def offer(self, job: MirrorJob) -> bool:
        """Buffer without waiting; False (and counted) when the buffer is full or closed."""
        if self._closed:
            self.drop(job.model, DROP_SHUTDOWN)
            return False
        jobs = self._jobs
        waiting = len(jobs)
        if waiting >= self._size:
            self.drop(job.model, DROP_QUEUE_FULL)
            return False
        jobs.append(job)
        if not waiting:
            self._wake.set()  # a worker that found the buffer empty may be asleep
        return True

    def depth_by_model(self) -> dict[str, int]:
        """Jobs waiting, by model: counted when scraped, not on every request's path."""
        waiting = list(self._jobs)  # one C call under the GIL: a consistent copy
        return dict(collections.Counter(job.model for job in waiting))

    def drop(self, model: str, reason: str, n: int = 1) -> None:
        self._metrics.dropped.labels(model, reason).inc(n)

    def _take(self) -> list[MirrorJob]:
        jobs: list[MirrorJob] = []
        pop = self._jobs.popleft
        try:
            while len(jobs) < self._batch:
                jobs.append(pop())
        except IndexError:
            pass
        return jobs

    def _run(self) -> None:
        while True:
            # Cleared before looking, so an `offer` after the look always wakes the wait.
            self._wake.clear()
            jobs = self._take()
            if not jobs:
                if self._closed:
                    return
                self._wake.wait(1.0)
                continue
            try:
                self._handle(jobs)
            except Exception:  # the worker must outlive any shadow failure
                log.exception("mirror to %s failed", jobs[0].model)
            if self._linger_s and len(jobs) < self._batch and not self._closed:
                time.sleep(self._linger_s)  # let a batch gather: fewer wake-ups, less GIL churn

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop taking work; hand over what is buffered within the timeout, count the rest."""
        self._closed = True
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        for worker in self._workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        left: collections.Counter[str] = collections.Counter()
        while jobs := self._take():
            left.update(job.model for job in jobs)
        for model, n in left.items():
            self.drop(model, DROP_SHUTDOWN, n)
