"""The shadow's worker process: scores mirrored requests away from the gateway's GIL and at a
lower CPU priority, so production's event loop and cores come first.

It talks to its parent over one pipe in plain bytes (never pickle). A batch of jobs for one
shadow bundle is a JSON header (`model`, `version`, `sha256`, `cols`, `jobs`: [[seq, rows], …])
followed by all their float32 rows; its answer is one JSON object, `results`: [{`seq`, `scores`
or null, `error` or null, `seconds`}, …]. Each job is scored (and timed) on its own, so its
latency is what a thread would have measured. It loads a shadow bundle the same way the parent
does: fetched from the artifact store, sha256 verified, opened only through
`evaluators.artifacts`.
"""

from __future__ import annotations

import json
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from gateway.models import LoadedModel, ModelCache
from gateway.routing import Deployed
from gateway.store import ArtifactStore

STOP = b"stop"  # the parent sends this after its last job: answer everything before it, exit
NOT_LOADED = "shadow not loaded"  # the worker could not load the bundle; counted as a drop
MODEL_FAILED = "model failed to answer"
KEEP_MODELS = 8  # bundles kept loaded; a routing change rarely needs more than the new one


def encode_batch(
    jobs: list[tuple[int, np.ndarray[Any, Any]]], *, model: str, version: str, sha256: str
) -> tuple[bytes, bytes]:
    """One message for jobs (seq, float32 rows) that share a shadow bundle."""
    header = {
        "model": model,
        "version": version,
        "sha256": sha256,
        "cols": int(jobs[0][1].shape[1]),
        "jobs": [[seq, int(x.shape[0])] for seq, x in jobs],
    }
    rows = np.concatenate([x for _, x in jobs]).astype(np.float32, copy=False)
    return json.dumps(header).encode(), rows.tobytes()


def _score(cache: ModelCache, header: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    jobs = [(int(seq), int(rows)) for seq, rows in header["jobs"]]
    deployed = Deployed(version=str(header["version"]), sha256=str(header["sha256"]))
    loaded: LoadedModel | str = cache.get(str(header["model"]), deployed)
    if isinstance(loaded, str):
        return [
            {"seq": seq, "scores": None, "error": NOT_LOADED, "seconds": 0.0} for seq, _ in jobs
        ]
    x = np.frombuffer(data, dtype=np.float32).reshape(-1, int(header["cols"]))
    results = []
    start = 0
    for seq, rows in jobs:
        started = time.perf_counter()
        try:
            scores: list[float] | None = (
                loaded.scores(x[start : start + rows]).astype(np.float64).tolist()
            )
            error = None
        except Exception:
            scores, error = None, MODEL_FAILED
        seconds = time.perf_counter() - started
        results.append({"seq": seq, "scores": scores, "error": error, "seconds": seconds})
        start += rows
    return results


def serve(conn: Connection, store_url: str, cache_dir: str, niceness: int) -> None:
    """The child's main loop (the target of the spawned process)."""
    if niceness:
        os.nice(niceness)  # production's threads in the parent keep their priority
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    cache = ModelCache(ArtifactStore(store_url), Path(cache_dir))
    seen: list[str] = []
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
        conn.send_bytes(json.dumps({"results": _score(cache, header, data)}).encode())
    conn.close()
