"""The prediction log: rows buffered in memory, flushed off the request path as Parquet files
under `<store>/prediction-log/model=<m>/day=<YYYY-MM-DD>/variant=<v>/<uuid>.parquet`
(hive partitions; `pandas.read_parquet(<store>/prediction-log)` reads them back)."""

from __future__ import annotations

import json
import logging
import math
import posixpath
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from gateway import names
from gateway.clock import Clock

log = logging.getLogger("shipyard.gateway")

DROP_BUFFER_FULL = "buffer_full"
DROP_WRITE_FAILED = "write_failed"

SCHEMA = pa.schema(
    [
        (names.LOG_REQUEST_ID, pa.string()),
        (names.LOG_VERSION, pa.string()),
        (names.LOG_TIME, pa.timestamp("us", tz="UTC")),
        (names.LOG_FEATURES, pa.string()),
        (names.LOG_SCORE, pa.float64()),
        (names.LOG_OUTPUTS, pa.string()),
        (names.LOG_LATENCY_MS, pa.float64()),
        (names.LOG_ERROR, pa.string()),
    ]
)
assert tuple(SCHEMA.names) == names.LOG_COLUMNS


@dataclass(frozen=True)
class LogEntry:
    """One request as answered (or mirrored); expanded into one row per input row at flush
    time, so JSON encoding never happens on the request path. A request of N > 1 rows logs
    request ids `<id>#0` … `<id>#N-1`."""

    request_id: str
    version: str
    time: datetime
    features: list[str]
    x: NDArray[np.float32]
    scores: NDArray[np.float64] | None
    latency_ms: float
    error: str | None

    def rows(self) -> Iterator[dict[str, Any]]:
        n = int(self.x.shape[0])
        for i in range(n):
            score = None if self.scores is None else float(self.scores[i])
            values = [None if math.isnan(v) else v for v in self.x[i].tolist()]
            yield {
                names.LOG_REQUEST_ID: self.request_id if n == 1 else f"{self.request_id}#{i}",
                names.LOG_VERSION: self.version,
                names.LOG_TIME: self.time,
                names.LOG_FEATURES: json.dumps(dict(zip(self.features, values, strict=True))),
                names.LOG_SCORE: score,
                names.LOG_OUTPUTS: json.dumps({"score": score}),
                names.LOG_LATENCY_MS: self.latency_ms,
                names.LOG_ERROR: self.error,
            }


class PredictionLog:
    """Thread-safe buffer; a background thread writes one file per partition per flush."""

    def __init__(
        self,
        *,
        fs: Any,
        root: str,
        clock: Clock,
        on_drop: Callable[[str, int], None] = lambda reason, rows: None,
        flush_rows: int = 10_000,
        flush_every_s: float = 5.0,
        max_buffered: int = 200_000,
    ) -> None:
        self._fs = fs
        self._root = posixpath.join(root, names.PREDICTION_LOG_DIR)
        self.clock = clock
        self._flush_rows = flush_rows
        self._flush_every_s = flush_every_s
        self._max_buffered = max_buffered
        self._buffer: dict[tuple[str, str, str], list[LogEntry]] = defaultdict(list)
        self._count = 0
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def add(self, model: str, variant: str, entry: LogEntry) -> None:
        rows = int(entry.x.shape[0])
        with self._lock:
            if self._count + rows > self._max_buffered:
                full = True  # bounded memory when the store is slow or unreachable
            else:
                self._buffer[(model, entry.time.strftime("%Y-%m-%d"), variant)].append(entry)
                self._count += rows
                full = self._count >= self._flush_rows
                rows = 0
        if rows:
            self._on_drop(DROP_BUFFER_FULL, rows)
        if full:
            self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_every_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write everything buffered; the number of rows written."""
        with self._lock:
            batches, self._buffer, self._count = self._buffer, defaultdict(list), 0
        written = 0
        for (model, day, variant), entries in batches.items():
            rows = [row for entry in entries for row in entry.rows()]
            try:
                self._write(model, day, variant, rows)
                written += len(rows)
            except Exception:
                log.exception("prediction log write failed (%d rows lost)", len(rows))
                self._on_drop(DROP_WRITE_FAILED, len(rows))
        return written

    def _write(self, model: str, day: str, variant: str, rows: list[dict[str, Any]]) -> None:
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        folder = posixpath.join(self._root, f"model={model}", f"day={day}", f"variant={variant}")
        self._fs.makedirs(folder, exist_ok=True)
        final = posixpath.join(folder, f"{uuid.uuid4().hex}.parquet")
        # Written under a dot name and renamed: readers skip hidden files, never see half a file.
        temp = posixpath.join(folder, f".{uuid.uuid4().hex}.tmp")
        with self._fs.open(temp, "wb") as handle:
            pq.write_table(table, handle)
        self._fs.mv(temp, final)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.flush()
