"""Mirroring to the shadow, off the request path: a bounded queue and background workers.

`offer` never blocks: a full queue drops the request and counts it. A slow or failing shadow
only ever slows its own worker, never a production answer. A worker takes every job waiting
at once (a batch); with `linger_s` it then pauses, so under load it wakes a few hundred times a
second rather than once per request — each wake-up competes with the event loop for the GIL.
"""

from __future__ import annotations

import collections
import logging
import queue
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
        self._queue: queue.Queue[MirrorJob | None] = queue.Queue(maxsize=size)
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
        """Enqueue without waiting; False (and counted) when the queue is full or closed."""
        if self._closed:
            self.drop(job.model, DROP_SHUTDOWN)
            return False
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.drop(job.model, DROP_QUEUE_FULL)
            return False
        return True

    def depth_by_model(self) -> dict[str, int]:
        """Jobs waiting, by model: counted when scraped, not on every request's path."""
        with self._queue.mutex:
            waiting = list(self._queue.queue)
        return dict(collections.Counter(job.model for job in waiting if job is not None))

    def drop(self, model: str, reason: str) -> None:
        self._metrics.dropped.labels(model, reason).inc()

    def _take(self) -> tuple[list[MirrorJob], bool]:
        """Every job waiting (at least one, up to `batch`); True once the stop sentinel is seen."""
        jobs: list[MirrorJob] = []
        job = self._queue.get()
        while job is not None:
            jobs.append(job)
            if len(jobs) >= self._batch:
                break
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
        return jobs, job is None

    def _run(self) -> None:
        while True:
            jobs, stopping = self._take()
            if jobs:
                try:
                    self._handle(jobs)
                except Exception:  # the worker must outlive any shadow failure
                    log.exception("mirror to %s failed", jobs[0].model)
            if stopping:
                return
            if self._linger_s and not self._closed:
                time.sleep(self._linger_s)  # let a batch gather: fewer wake-ups, less GIL churn

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop taking work; drain what is queued within the timeout, count the rest dropped."""
        self._closed = True
        for _ in self._workers:
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                break
        for worker in self._workers:
            worker.join(timeout=timeout_s)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                self.drop(job.model, DROP_SHUTDOWN)
