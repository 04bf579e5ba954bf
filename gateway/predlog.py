"""The prediction log: rows buffered in memory, flushed off the request path as Parquet files
under `<store>/prediction-log/model=<m>/day=<YYYY-MM-DD>/variant=<v>/<uuid>.parquet`
(hive partitions; `pandas.read_parquet(<store>/prediction-log)` reads them back)."""

from __future__ import annotations

import json
import logging
import posixpath
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from gateway import names
from gateway.clock import Clock
from gateway.protocol import CONTEXT_PARAMETER, Context, Scalar

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
    time (`to_table`), so JSON encoding never happens on the request path. A request of N > 1
    rows logs request ids `<id>#0` … `<id>#N-1`. `context` (the request's `shipyard_context`:
    one object for every row, or one per row) is appended to each row's features object."""

    request_id: str
    version: str
    time: datetime
    features: list[str]
    x: NDArray[np.float32]
    scores: NDArray[np.float64] | None
    latency_ms: float
    error: str | None
    context: Context | None = None


def _json_numbers(values: NDArray[np.float64]) -> pa.Array:
    """Each value as JSON number text (Arrow's shortest round-trip form); null if not finite."""
    column = pa.array(values)
    return pc.if_else(pc.is_finite(column), pc.cast(column, pa.string()), "null")


def _json_objects(
    x: NDArray[np.float32], features: tuple[str, ...], context: pa.Array | None = None
) -> pa.Array:
    """One JSON object (feature -> value) per row of x, formatted column-wise in Arrow; each
    row's `context` text (`,"key":value…` or empty) goes before its closing brace."""
    parts: list[Any] = []
    for j, name in enumerate(features):
        parts.append(("{" if j == 0 else ",") + json.dumps(name) + ":")
        parts.append(_json_numbers(x[:, j].astype(np.float64)))
    if context is not None:
        parts.append(context)
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


# Values keep unicode as is (the segment reader's fast path reads it); keys are written as
# json.dumps writes them, feature names included, which is how the reader looks them up.
# Quotes, backslashes and control characters are escaped in both.
_CONTEXT_VALUE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _context_text(context: dict[str, Scalar], skip: frozenset[str], marker: bool) -> str:
    """`,"key":value…` for the context columns that are not model features, then the marker
    `,"shipyard_context":["key",…]` that tells readers which of the row's keys are context."""
    kept = [key for key in context if key not in skip]
    if not kept:
        return ""
    value = _CONTEXT_VALUE.encode
    text = "".join(f",{json.dumps(key)}:{value(context[key])}" for key in kept)
    return text + (f",{json.dumps(CONTEXT_PARAMETER)}:{json.dumps(kept)}" if marker else "")


def _context_column(
    entries: list[LogEntry], counts: list[int], features: tuple[str, ...]
) -> pa.Array | None:
    """Each row's context text; None when no entry has any (the usual case costs nothing)."""
    if all(entry.context is None for entry in entries):
        return None
    # A model feature wins a name clash; the marker's own name is never a context column.
    skip = frozenset((*features, CONTEXT_PARAMETER))
    marker = CONTEXT_PARAMETER not in features
    # Requests mostly repeat a few segment combinations: each distinct context is encoded once
    # (the type is in the key: True == 1 == 1.0 but their JSON differs).
    done: dict[tuple[tuple[str, type, Scalar], ...], str] = {}

    def text(context: dict[str, Scalar]) -> str:
        key = tuple((k, type(v), v) for k, v in context.items())
        found = done.get(key)
        if found is None:
            found = done[key] = _context_text(context, skip, marker)
        return found

    texts: list[str] = []
    for entry, n in zip(entries, counts, strict=True):
        context = entry.context
        if context is None:
            texts.extend([""] * n)
        elif isinstance(context, dict):
            texts.extend([text(context)] * n)
        else:
            texts.extend(text(row) for row in context)
    return pa.array(texts, pa.string())


def _group_table(entries: list[LogEntry], features: tuple[str, ...]) -> pa.Table:
    counts = [int(entry.x.shape[0]) for entry in entries]
    ids: list[str] = []
    for entry, n in zip(entries, counts, strict=True):
        ids.extend([entry.request_id] if n == 1 else [f"{entry.request_id}#{i}" for i in range(n)])
    x = np.concatenate([entry.x for entry in entries], axis=0)
    missing = np.repeat([entry.scores is None for entry in entries], counts)
    scores = np.concatenate(
        [
            np.full(n, np.nan) if e.scores is None else e.scores
            for e, n in zip(entries, counts, strict=True)
        ]
    ).astype(np.float64)
    micros = np.repeat(
        [round(entry.time.timestamp() * 1_000_000) for entry in entries], counts
    ).astype(np.int64)
    outputs = pc.binary_join_element_wise('{"score":', _json_numbers(scores), "}", "")
    columns = {
        names.LOG_REQUEST_ID: pa.array(ids, pa.string()),
        names.LOG_VERSION: pa.array(np.repeat([e.version for e in entries], counts), pa.string()),
        names.LOG_TIME: pa.array(micros).cast(pa.timestamp("us", tz="UTC")),
        names.LOG_FEATURES: _json_objects(x, features, _context_column(entries, counts, features)),
        names.LOG_SCORE: pa.array(scores, mask=missing),
        names.LOG_OUTPUTS: outputs,
        names.LOG_LATENCY_MS: pa.array(np.repeat([e.latency_ms for e in entries], counts)),
        names.LOG_ERROR: pa.array(
            [e.error for e, n in zip(entries, counts, strict=True) for _ in range(n)], pa.string()
        ),
    }
    return pa.table(columns, schema=SCHEMA)


def to_table(entries: list[LogEntry]) -> pa.Table:
    """The entries as one Arrow table with names.LOG_COLUMNS, formatted column-wise (the
    log's writer thread would otherwise spend more time per row than a request takes)."""
    groups: dict[tuple[str, ...], list[LogEntry]] = {}
    for entry in entries:
        groups.setdefault(tuple(entry.features), []).append(entry)
    tables = [_group_table(group, features) for features, group in groups.items()]
    return pa.concat_tables(tables)


def _warm_up() -> None:
    entry = LogEntry(
        "warm-up",
        "0",
        datetime(2000, 1, 1, tzinfo=UTC),
        ["x"],
        np.zeros((1, 1), np.float32),
        np.zeros(1),
        0.0,
        None,
    )
    pq.write_table(to_table([entry]), pa.BufferOutputStream())


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
                # isoformat: a fifth of strftime's cost, on every answered request's path
                self._buffer[(model, entry.time.date().isoformat(), variant)].append(entry)
                self._count += rows
                full = self._count >= self._flush_rows
                rows = 0
        if rows:
            self._on_drop(DROP_BUFFER_FULL, rows)
        if full:
            self._wake.set()

    def start(self) -> None:
        # The first conversion imports what pyarrow loads lazily (pandas among it, ~1 s): done
        # here, before serving, not by the writer thread while holding the GIL that production
        # answers wait for (it was a p99 spike in the first seconds of every gateway).
        _warm_up()
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
            rows = sum(int(entry.x.shape[0]) for entry in entries)
            try:
                self._write(model, day, variant, to_table(entries))
                written += rows
            except Exception:
                log.exception("prediction log write failed (%d rows lost)", rows)
                self._on_drop(DROP_WRITE_FAILED, rows)
        return written

    def _write(self, model: str, day: str, variant: str, table: pa.Table) -> None:
        folder = posixpath.join(self._root, f"model={model}", f"day={day}", f"variant={variant}")
        self._fs.makedirs(folder, exist_ok=True)
        final = posixpath.join(folder, f"{uuid.uuid4().hex}.parquet")
        # Written under a dot name and renamed: readers skip hidden files, never see half a file.
        temp = posixpath.join(folder, f".{uuid.uuid4().hex}.tmp")
        sink = pa.BufferOutputStream()  # Arrow writes to its own buffer, not a Python file
        pq.write_table(table, sink)
        with self._fs.open(temp, "wb") as handle:
            handle.write(sink.getvalue().to_pybytes())
        self._fs.mv(temp, final)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.flush()
