"""Candidate vs production latency, measured interleaved in one run so noise hits both.

Single-row and batched requests are issued by `policy.concurrency` threads from one shared
schedule in which every candidate request is paired with a baseline request in random order.
The verdict uses single-row p99: `p99_ratio = candidate single p99 / baseline single p99`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evaluators.inference import Runner, feature_matrix
from evaluators.policy import LatencyPolicy
from evaluators.report import LatencySection, LatencyStats

_WARMUP_SINGLE = 5
_WARMUP_BATCH = 2
_CANDIDATE, _BASELINE = 0, 1


@dataclass(frozen=True)
class _Task:
    model: int  # _CANDIDATE or _BASELINE
    start: int  # first row
    rows: int


def _interleaved(count: int, *, rows: int, n_rows: int, rng: np.random.Generator) -> list[_Task]:
    """`count` request pairs; each pair's order is random so neither model always goes first."""
    tasks = []
    starts = rng.integers(0, max(1, n_rows - rows + 1), size=count)
    for start in starts:
        pair = [_Task(_CANDIDATE, int(start), rows), _Task(_BASELINE, int(start), rows)]
        if rng.random() < 0.5:
            pair.reverse()
        tasks.extend(pair)
    return tasks


def _run_schedule(
    tasks: list[_Task],
    matrices: tuple[NDArray[np.float32], NDArray[np.float32]],
    runners: tuple[Runner, Runner],
    *,
    concurrency: int,
    clock: Callable[[], int],
) -> tuple[list[float], list[float]]:
    """Latencies in ms per model, with `concurrency` threads draining one shared queue."""
    pending: queue.SimpleQueue[_Task] = queue.SimpleQueue()
    for task in tasks:
        pending.put(task)
    results: tuple[list[float], list[float]] = ([], [])
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            try:
                task = pending.get_nowait()
            except queue.Empty:
                return
            x = matrices[task.model][task.start : task.start + task.rows]
            try:
                began = clock()
                runners[task.model].predict(x)
                elapsed = clock() - began
            except BaseException as exc:  # surfaced to the caller below
                with lock:
                    errors.append(exc)
                return
            with lock:
                results[task.model].append(elapsed / 1e6)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.asarray(samples), [50, 95, 99])
    return float(p50), float(p95), float(p99)


def _stats(
    single: list[float], batch: list[float], *, batch_size: int, concurrency: int
) -> LatencyStats:
    s50, s95, s99 = _percentiles(single)
    b50, b95, b99 = _percentiles(batch)
    mean_batch_s = float(np.mean(batch)) / 1e3
    return LatencyStats(
        single_p50_ms=s50,
        single_p95_ms=s95,
        single_p99_ms=s99,
        batch_p50_ms=b50,
        batch_p95_ms=b95,
        batch_p99_ms=b99,
        # Rows/s one model sustains with `concurrency` threads each sending batches.
        throughput_rows_per_s=batch_size * concurrency / mean_batch_s if mean_batch_s else 0.0,
        single_samples_ms=[round(v, 5) for v in single],
    )


def measure_latency(
    *,
    candidate: Runner,
    baseline: Runner,
    frame: pd.DataFrame,
    policy: LatencyPolicy,
    seed: int = 0,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> LatencySection:
    """p50/p95/p99 of single-row and batched requests, candidate and baseline interleaved."""
    if frame.empty:
        raise ValueError("latency needs at least one benchmark row")
    runners = (candidate, baseline)
    matrices = (
        feature_matrix(frame, candidate.features),
        feature_matrix(frame, baseline.features),
    )
    n_rows = len(frame)
    batch_size = min(policy.batch_size, n_rows)
    for runner, x in zip(runners, matrices, strict=True):
        for _ in range(_WARMUP_SINGLE):
            runner.predict(x[:1])
        for _ in range(_WARMUP_BATCH):
            runner.predict(x[:batch_size])

    rng = np.random.default_rng(seed)
    batches = max(10, policy.requests // 10)
    single = _interleaved(policy.requests, rows=1, n_rows=n_rows, rng=rng)
    batched = _interleaved(batches, rows=batch_size, n_rows=n_rows, rng=rng)
    single_ms = _run_schedule(
        single, matrices, runners, concurrency=policy.concurrency, clock=clock
    )
    batch_ms = _run_schedule(
        batched, matrices, runners, concurrency=policy.concurrency, clock=clock
    )
    cand = _stats(single_ms[0], batch_ms[0], batch_size=batch_size, concurrency=policy.concurrency)
    base = _stats(single_ms[1], batch_ms[1], batch_size=batch_size, concurrency=policy.concurrency)
    ratio = cand.single_p99_ms / base.single_p99_ms if base.single_p99_ms > 0 else float("inf")
    return LatencySection(
        concurrency=policy.concurrency,
        batch_size=batch_size,
        requests=policy.requests,
        candidate=cand,
        baseline=base,
        p99_ratio=ratio,
        max_p99_ratio=policy.max_p99_ratio,
        within_tolerance=ratio <= policy.max_p99_ratio or cand.single_p99_ms <= policy.floor_ms,
    )


__all__ = ["measure_latency"]
