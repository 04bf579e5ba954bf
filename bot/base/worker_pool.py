"""Background threads, one job at a time each: woken when work arrives, polling otherwise."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class WorkerPool:
    """`job()` claims and does one unit of work, returning False when there was none."""

    def __init__(
        self, *, name: str, threads: int, job: Callable[[], bool], poll_s: float = 1.0
    ) -> None:
        self._name = name
        self._threads = threads
        self._job = job
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._busy = 0
        self._busy_lock = threading.Lock()

    @property
    def busy(self) -> int:
        """Threads inside `job()` right now (tests and shutdown wait for zero)."""
        return self._busy

    def start(self) -> None:
        for i in range(self._threads):
            thread = threading.Thread(
                target=self._run, name=f"shipyard-{self._name}-{i}", daemon=True
            )
            thread.start()
            self._workers.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._workers:
            thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._busy_lock:
                self._busy += 1
            try:
                worked = self._job()
            except Exception:  # the store itself failed: back off, then try again
                log.exception("%s worker could not claim work", self._name)
                worked = False
            finally:
                with self._busy_lock:
                    self._busy -= 1
            if not worked:
                self._wake.wait(self._poll_s)
                self._wake.clear()
