"""The shadow's worker process: scores mirrored requests away from the gateway's GIL and at a
lower CPU priority, so production's event loop and cores come first.

It talks to its parent over one pipe in plain bytes (never pickle): a job is a JSON header
(`seq`, `model`, `version`, `sha256`, `rows`, `cols`) followed by the float32 rows; a result is a
JSON object (`seq`, `scores` or null, `error` or null, `seconds`). It loads a shadow bundle the
same way the parent does: fetched from the artifact store, sha256 verified, opened only through
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


def encode_job(
    seq: int, *, model: str, version: str, sha256: str, x: np.ndarray[Any, Any]
) -> tuple[bytes, bytes]:
    header = {
        "seq": seq,
        "model": model,
        "version": version,
        "sha256": sha256,
        "rows": int(x.shape[0]),
        "cols": int(x.shape[1]),
    }
    return json.dumps(header).encode(), np.ascontiguousarray(x, dtype=np.float32).tobytes()


def _score(cache: ModelCache, header: dict[str, Any], data: bytes) -> dict[str, Any]:
    seq = int(header["seq"])
    deployed = Deployed(version=str(header["version"]), sha256=str(header["sha256"]))
    loaded: LoadedModel | str = cache.get(str(header["model"]), deployed)
    if isinstance(loaded, str):
        return {"seq": seq, "scores": None, "error": NOT_LOADED, "seconds": 0.0}
    x = np.frombuffer(data, dtype=np.float32).reshape(int(header["rows"]), int(header["cols"]))
    started = time.perf_counter()
    try:
        scores: list[float] | None = loaded.scores(x).astype(np.float64).tolist()
        error = None
    except Exception:
        scores, error = None, MODEL_FAILED
    return {"seq": seq, "scores": scores, "error": error, "seconds": time.perf_counter() - started}


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
        conn.send_bytes(json.dumps(_score(cache, header, data)).encode())
    conn.close()
