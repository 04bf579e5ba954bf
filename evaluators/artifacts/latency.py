"""Candidate vs production latency, measured interleaved in rounds so machine load hits both.

Each of `policy.rounds` rounds issues single-row requests, batched requests and a few large
batches (throughput), every candidate request paired with a production request in random
order (ABAB…), by `policy.concurrency` threads (large batches: one thread). Load that comes
and goes hits both models in the same round, so ratios are judged, not absolute times, and each
ratio is the median over rounds of the round's ratio, with distribution-free one-sided bounds
(sign-test order statistics, robust to a few rounds hit by a burst of load): the verdict then says
within the limit, beyond it, or too noisy to tell, instead of reading noise as a finding.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from evaluators.artifacts.inference import Runner, feature_matrix
from evaluators.policy import LatencyPolicy
from evaluators.report import LatencySection, LatencyStats, RatioBounds

if TYPE_CHECKING:
    import pandas as pd

_WARMUP_SINGLE = 5
_WARMUP_BATCH = 2
_CANDIDATE, _BASELINE = 0, 1
_LARGE_BATCHES = 1  # a pair of large batches per round: the bounds over rounds shrug off a hiccup


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
    single: list[float], batch: list[float], throughput: list[float], *, rows: int
) -> LatencyStats:
    s50, s95, s99 = _percentiles(single)
    b50, b95, b99 = _percentiles(batch)
    median_s = float(np.median(throughput)) / 1e3
    return LatencyStats(
        single_p50_ms=s50,
        single_p95_ms=s95,
        single_p99_ms=s99,
        batch_p50_ms=b50,
        batch_p95_ms=b95,
        batch_p99_ms=b99,
        # Rows/s one worker sustains on a large batch (median batch time).
        throughput_rows_per_s=rows / median_s if median_s > 0 else 0.0,
        single_samples_ms=[round(v, 5) for v in single],
    )


Rounds = list[tuple[list[float], list[float]]]  # per round: (candidate ms, production ms)


def _sign_test_rank(count: int, confidence: float) -> int:
    """1-based k with P(B <= k-1) >= confidence for B ~ Binomial(count, 1/2), in exact integer
    arithmetic: no float ties at the boundary, and no scipy.stats (1.5 s to import)."""
    target = Fraction(confidence) * 2**count
    total = 0
    for i in range(count + 1):
        total += math.comb(count, i)
        if total >= target:
            return i + 1
    return count + 1


def _order_bounds(values: NDArray[np.float64], *, confidence: float) -> tuple[float, float]:
    """One-sided distribution-free bounds on the median of `values` (the sign test's order
    statistics): robust to a few rounds hit by a burst of load. Too few rounds give ±inf."""
    ordered = np.sort(values)
    count = ordered.size
    k = _sign_test_rank(count, confidence)
    if k > count:
        return -math.inf, math.inf
    return float(ordered[count - k]), float(ordered[k - 1])


def _bounds(
    rounds: Rounds,
    statistic: Callable[[NDArray[np.float64]], float],
    *,
    confidence: float,
) -> tuple[RatioBounds, float, float]:
    """The median over rounds of each round's candidate/production ratio of `statistic`, with
    one-sided bounds; also one-sided bounds (low, high) of the candidate's own statistic."""
    candidate = np.array([statistic(np.asarray(c)) for c, _ in rounds])
    baseline = np.array([statistic(np.asarray(b)) for _, b in rounds])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(baseline > 0, candidate / np.where(baseline > 0, baseline, 1), np.inf)
    low, high = _order_bounds(ratios, confidence=confidence)
    own_low, own_high = _order_bounds(candidate, confidence=confidence)
    return (
        RatioBounds(ratio=float(np.median(ratios)), low=low, high=high),
        own_low,
        own_high,
    )


def _ratio(candidate: float, baseline: float) -> float:
    return candidate / baseline if baseline > 0 else float("inf")


def _p99(values: NDArray[np.float64]) -> float:
    return float(np.percentile(values, 99))


def _median(values: NDArray[np.float64]) -> float:
    return float(np.median(values))


def measure_latency(
    *,
    candidate: Runner,
    baseline: Runner,
    frame: pd.DataFrame,
    policy: LatencyPolicy,
    seed: int = 0,
    confidence: float = 0.95,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> LatencySection:
    """Single-row, batched and large-batch latency of both models, interleaved in rounds."""
    if frame.empty:
        raise ValueError("latency needs at least one benchmark row")
    return measure_latency_on(
        candidate=candidate,
        baseline=baseline,
        matrices=(
            feature_matrix(frame, candidate.features),
            feature_matrix(frame, baseline.features),
        ),
        policy=policy,
        seed=seed,
        confidence=confidence,
        clock=clock,
    )


def measure_latency_on(
    *,
    candidate: Runner,
    baseline: Runner,
    matrices: tuple[NDArray[np.float32], NDArray[np.float32]],
    policy: LatencyPolicy,
    seed: int = 0,
    confidence: float = 0.95,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> LatencySection:
    """`measure_latency` on ready feature matrices (the worker process never imports pandas)."""
    n_rows = matrices[0].shape[0]
    if n_rows == 0 or matrices[1].shape[0] != n_rows:
        raise ValueError("latency needs the same, non-empty benchmark rows for both models")
    runners = (candidate, baseline)
    batch_size = min(policy.batch_size, n_rows)
    big = min(policy.throughput_rows, n_rows)
    for runner, x in zip(runners, matrices, strict=True):
        for _ in range(_WARMUP_SINGLE):
            runner.predict(x[:1])
        for _ in range(_WARMUP_BATCH):
            runner.predict(x[:batch_size])

    rng = np.random.default_rng(seed)
    rounds = min(policy.rounds, policy.requests)
    singles = [len(part) for part in np.array_split(np.arange(policy.requests), rounds)]
    batches = [
        max(1, len(part))
        for part in np.array_split(np.arange(max(10, policy.requests // 10)), rounds)
    ]
    single: Rounds = []
    batch: Rounds = []
    throughput: Rounds = []
    for count, batch_count in zip(singles, batches, strict=True):
        single.append(
            _run_schedule(
                _interleaved(count, rows=1, n_rows=n_rows, rng=rng),
                matrices,
                runners,
                concurrency=policy.concurrency,
                clock=clock,
            )
        )
        batch.append(
            _run_schedule(
                _interleaved(batch_count, rows=batch_size, n_rows=n_rows, rng=rng),
                matrices,
                runners,
                concurrency=policy.concurrency,
                clock=clock,
            )
        )
        throughput.append(
            _run_schedule(
                _interleaved(_LARGE_BATCHES, rows=big, n_rows=n_rows, rng=rng),
                matrices,
                runners,
                concurrency=1,
                clock=clock,
            )
        )

    def flat(found: Rounds, which: int) -> list[float]:
        return [value for one in found for value in one[which]]

    cand = _stats(flat(single, 0), flat(batch, 0), flat(throughput, 0), rows=big)
    base = _stats(flat(single, 1), flat(batch, 1), flat(throughput, 1), rows=big)
    p99, _, candidate_p99_high = _bounds(single, _p99, confidence=confidence)
    batch_time, _, candidate_time_high = _bounds(throughput, _median, confidence=confidence)
    rows_per_s_low = big / (candidate_time_high / 1e3) if candidate_time_high > 0 else 0.0
    batch_limit = policy.max_batch_ratio or policy.max_p99_ratio
    within = (p99.high <= policy.max_p99_ratio or candidate_p99_high <= policy.floor_ms) and (
        batch_time.high <= batch_limit or 0 < policy.min_rows_per_s <= rows_per_s_low
    )
    return LatencySection(
        concurrency=policy.concurrency,
        batch_size=batch_size,
        requests=policy.requests,
        candidate=cand,
        baseline=base,
        p99_ratio=_ratio(cand.single_p99_ms, base.single_p99_ms),
        max_p99_ratio=policy.max_p99_ratio,
        within_tolerance=within,
        rounds=rounds,
        confidence=confidence,
        p99=p99,
        candidate_p99_high_ms=candidate_p99_high,
        throughput_rows=big,
        batch_time=batch_time,
        candidate_rows_per_s_low=rows_per_s_low,
    )


__all__ = ["measure_latency", "measure_latency_on"]
