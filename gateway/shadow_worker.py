"""The shadow's worker process: scores mirrored requests away from the gateway's GIL and at a
lower CPU priority, so production's event loop and cores come first.

It talks to its parent over one pipe in plain bytes (never pickle). A batch of jobs for one
shadow bundle is a JSON header (`model`, `version`, `sha256`, `cols`, `jobs`: [[seq, rows,
request id, time in µs, logged, context or null], …]) followed by all their float32 rows; its
answer is one JSON object, `results`: [{`seq`, `scores` or null, `error` or null, `seconds`},
…] and `log_dropped` ({reason: rows}). Each job is scored (and timed) on its own, so its
latency is what a thread would have measured. The worker writes the shadow's prediction-log
rows itself (the production row's request id, time and context), so formatting them never
takes the gateway's GIL. It loads a shadow bundle the same way the gateway does: fetched from
the artifact store, sha256 verified, opened only through `evaluators.artifacts`.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gateway import names
from gateway.clock import SystemClock
from gateway.models import LoadedModel, ModelCache
from gateway.predlog import LogEntry, PredictionLog
from gateway.protocol import Context
from gateway.routing import Deployed
from gateway.store import ArtifactStore

STOP = b"stop"  # the parent sends this after its last job: answer everything before it, exit
NOT_LOADED = "shadow not loaded"  # the worker could not load the bundle; counted as a drop
MODEL_FAILED = "model failed to answer"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEEP_MODELS = 8  # bundles kept loaded; a routing change rarely needs more than the new one


@dataclass(frozen=True)
class WorkerJob:
    seq: int
    request_id: str
    at: datetime  # the production row's time: the shadow row shares it
    logged: bool  # sampled for the prediction log (decided by the gateway, by request id)
    x: np.ndarray[Any, Any]  # float32 rows in the shadow's feature order
    context: Context | None = None  # the request's context columns, logged with its rows


def encode_batch(
    jobs: list[WorkerJob], *, model: str, version: str, sha256: str
) -> tuple[bytes, bytes]:
    """One message for jobs that share a shadow bundle."""
    header = {
        "model": model,
        "version": version,
        "sha256": sha256,
        "cols": int(jobs[0].x.shape[1]),
        "jobs": [
            [job.seq, int(job.x.shape[0]), job.request_id, _micros(job.at), job.logged, job.context]
            for job in jobs
        ],
    }
    rows = np.concatenate([job.x for job in jobs]).astype(np.float32, copy=False)
    return json.dumps(header).encode(), rows.tobytes()


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def _score(
    cache: ModelCache, plog: PredictionLog, header: dict[str, Any], data: bytes
) -> list[dict[str, Any]]:
    jobs = [
        (int(seq), int(rows), str(request_id), int(micros), bool(logged), context)
        for seq, rows, request_id, micros, logged, context in header["jobs"]
    ]
    model = str(header["model"])
    deployed = Deployed(version=str(header["version"]), sha256=str(header["sha256"]))
    loaded: LoadedModel | str = cache.get(model, deployed)
    if isinstance(loaded, str):
        return [
            {"seq": job[0], "scores": None, "error": NOT_LOADED, "seconds": 0.0} for job in jobs
        ]
    x = np.frombuffer(data, dtype=np.float32).reshape(-1, int(header["cols"]))
    results = []
    start = 0
    for seq, rows, request_id, micros, logged, context in jobs:
        rows_x = x[start : start + rows]
        start += rows
        started = time.perf_counter()
        try:
            scores: NDArray[np.float64] | None = loaded.scores(rows_x).astype(np.float64)
            error = None
        except Exception:
            scores, error = None, MODEL_FAILED
        seconds = time.perf_counter() - started
        if logged:
            at = EPOCH + timedelta(microseconds=micros)
            entry = LogEntry(
                request_id,
                loaded.version,
                at,
                loaded.features,
                rows_x,
                scores,
                seconds * 1000,
                error,
                context,
            )
            plog.add(model, names.VARIANT_SHADOW, entry)
        out = None if scores is None else scores.tolist()
        results.append({"seq": seq, "scores": out, "error": error, "seconds": seconds})
    return results


class _Dropped:
    """Prediction log rows this worker lost, reported to the gateway with its next answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, reason: str, rows: int) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + rows

    def take(self) -> dict[str, int]:
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts


def serve(
    conn: Connection,
    store_url: str,
    cache_dir: str,
    niceness: int,
    flush_rows: int,
    flush_every_s: float,
) -> None:
    """The child's main loop (the target of the spawned process)."""
    if niceness:
        os.nice(niceness)  # production's threads in the parent keep their priority
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    store = ArtifactStore(store_url)
    cache = ModelCache(store, Path(cache_dir))
    dropped = _Dropped()
    # The shadow's rows are written from here: formatting them would cost the gateway's GIL.
    plog = PredictionLog(
        fs=store.fs,
        root=store.root,
        clock=SystemClock(),
        on_drop=dropped.add,
        flush_rows=flush_rows,
        flush_every_s=flush_every_s,
    )
    plog.start()
    seen: list[str] = []
    try:
        while True:
            try:
                header_bytes = conn.recv_bytes()
                if header_bytes == STOP:
                    break
                data = conn.recv_bytes()
            except (EOFError, OSError):
                break  # the parent is gone
            header = json.loads(header_bytes)
            sha = str(header["sha256"])
            if sha not in seen:
                seen.append(sha)
                if len(seen) > KEEP_MODELS:
                    seen = seen[-KEEP_MODELS:]
                    cache.retain(set(seen))
            results = _score(cache, plog, header, data)
            message = {"results": results, "log_dropped": dropped.take()}
            conn.send_bytes(json.dumps(message).encode())
    finally:
        plog.stop()  # flush: the gateway waits for this process before it reports stopped
    with contextlib.suppress(OSError):
        conn.send_bytes(json.dumps({"results": [], "log_dropped": dropped.take()}).encode())
    conn.close()
