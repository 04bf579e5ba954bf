"""Mirrored requests for one shadow bundle, scored together: in the shadow's worker process (the
default) or in a mirror thread of the gateway (`--mirror-mode thread`), the same way.

On the pipe to the worker a batch is plain bytes (never pickle): a JSON header (`msg`, `model`,
`version`, `sha256`, `cols`, `jobs`: [[rows, request id, time in µs, logged, context or
null], …]) followed by all the jobs' float32 rows. Each job is scored and timed on its own, so
its latency is what the gateway measures for production; its prediction-log row carries the
production row's request id, time and context.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gateway import names
from gateway.metrics import LATENCY_BUCKETS, SCORE_BUCKETS
from gateway.models import LoadedModel
from gateway.predlog import LogEntry, PredictionLog
from gateway.protocol import Context
from gateway.shadow_totals import ShadowTotals, bucketed

MODEL_FAILED = "model failed to answer"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ShadowJob:
    rows: int
    request_id: str
    at: datetime  # the production row's time: the shadow row shares it
    logged: bool  # sampled for the prediction log (decided by the gateway, by request id)
    context: Context | None = None  # the request's context columns, logged with its rows


@dataclass(frozen=True)
class ShadowBatch:
    model: str
    version: str
    sha256: str
    jobs: list[ShadowJob]
    x: NDArray[np.float32]  # every job's rows, in order, in the shadow's feature order

    def encode(self, msg: int) -> tuple[bytes, bytes]:
        header = {
            "msg": msg,
            "model": self.model,
            "version": self.version,
            "sha256": self.sha256,
            "cols": int(self.x.shape[1]),
            "jobs": [[j.rows, j.request_id, _micros(j.at), j.logged, j.context] for j in self.jobs],
        }
        return json.dumps(header).encode(), np.ascontiguousarray(self.x, np.float32).tobytes()

    @classmethod
    def decode(cls, header_bytes: bytes, data: bytes) -> tuple[int, ShadowBatch]:
        header: dict[str, Any] = json.loads(header_bytes)
        jobs = [
            ShadowJob(
                int(rows),
                str(request_id),
                EPOCH + timedelta(microseconds=int(micros)),
                bool(logged),
                context,
            )
            for rows, request_id, micros, logged, context in header["jobs"]
        ]
        x = np.frombuffer(data, dtype=np.float32).reshape(-1, int(header["cols"]))
        batch = cls(str(header["model"]), str(header["version"]), str(header["sha256"]), jobs, x)
        return int(header["msg"]), batch


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def score(loaded: LoadedModel, batch: ShadowBatch, plog: PredictionLog) -> ShadowTotals:
    """Score each job, log the sampled ones, and sum what the metrics need."""
    totals = ShadowTotals()
    seconds: list[float] = []
    answered: list[NDArray[np.float64]] = []
    start = 0
    for job in batch.jobs:
        rows_x = batch.x[start : start + job.rows]
        start += job.rows
        started = time.perf_counter()
        try:
            scores: NDArray[np.float64] | None = loaded.scores(rows_x).astype(np.float64)
            error = None
        except Exception:
            scores, error = None, MODEL_FAILED
        took = time.perf_counter() - started
        if scores is None:
            totals.error += 1
        else:
            totals.ok += 1
            seconds.append(took)
            answered.append(scores)
        if job.logged:
            entry = LogEntry(
                job.request_id,
                loaded.version,
                job.at,
                loaded.features,
                rows_x,
                scores,
                took * 1000,
                error,
                job.context,
            )
            plog.add(batch.model, names.VARIANT_SHADOW, entry)
    if seconds:
        totals.latency, _ = bucketed(np.asarray(seconds), LATENCY_BUCKETS)
        totals.score, totals.nan_scores = bucketed(np.concatenate(answered), SCORE_BUCKETS)
    return totals
