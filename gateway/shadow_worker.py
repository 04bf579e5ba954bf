"""The shadow's worker process: scores mirrored requests away from the gateway's GIL and at a
lower CPU priority, so production's event loop and cores come first.

It talks to its parent over one pipe in plain bytes (never pickle): a batch as
`gateway.shadow_batch` encodes it, and per batch one JSON answer, `{"msg", "totals",
"log_dropped"}`: the batch's counts and latency and score buckets (`gateway.shadow_totals`),
summed here so the gateway process does a few calls per batch rather than several per request.
The worker writes the shadow's prediction-log rows itself, so formatting them never takes the
gateway's GIL. It loads a shadow bundle the same way the gateway does: fetched from the artifact
store, sha256 verified, opened only through `evaluators.artifacts`.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from gateway import shadow_batch
from gateway.clock import SystemClock
from gateway.models import LoadedModel, ModelCache
from gateway.predlog import PredictionLog
from gateway.routing import Deployed
from gateway.shadow_batch import ShadowBatch
from gateway.shadow_totals import ShadowTotals
from gateway.store import ArtifactStore

STOP = b"stop"  # the parent sends this after its last batch: answer everything before it, exit
KEEP_MODELS = 8  # bundles kept loaded; a routing change rarely needs more than the new one


def _answer(cache: ModelCache, plog: PredictionLog, batch: ShadowBatch) -> ShadowTotals:
    deployed = Deployed(version=batch.version, sha256=batch.sha256)
    loaded: LoadedModel | str = cache.get(batch.model, deployed)
    if isinstance(loaded, str):  # counted as dropped (shadow_not_loaded) by the gateway
        return ShadowTotals(not_loaded=len(batch.jobs))
    return shadow_batch.score(loaded, batch, plog)


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
            msg, batch = ShadowBatch.decode(header_bytes, data)
            sha = batch.sha256
            if sha not in seen:
                seen.append(sha)
                if len(seen) > KEEP_MODELS:
                    seen = seen[-KEEP_MODELS:]
                    cache.retain(set(seen))
            totals = _answer(cache, plog, batch)
            message = {"msg": msg, "totals": totals.to_json(), "log_dropped": dropped.take()}
            conn.send_bytes(json.dumps(message).encode())
    finally:
        plog.stop()  # flush: the gateway waits for this process before it reports stopped
    with contextlib.suppress(OSError):
        conn.send_bytes(json.dumps({"msg": None, "log_dropped": dropped.take()}).encode())
    conn.close()
