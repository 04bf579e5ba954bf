"""Replay dataset rows against a gateway at a chosen rate (open loop, bounded concurrency) and
summarise what was achieved: rate, latency percentiles, errors."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

MAX_ROWS_LOADED = 1_000_000


@dataclass
class ReplayResult:
    sent: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> str:
        return (
            f"sent {self.sent} requests in {self.seconds:.2f} s: {self.rate:.1f} requests/s; "
            f"latency p50 {self.percentile(50):.2f} ms, p95 {self.percentile(95):.2f} ms, "
            f"p99 {self.percentile(99):.2f} ms; errors {self.errors}"
        )


def model_features(url: str, model: str) -> list[str]:
    """The model's feature columns, from its OIP metadata (the per-feature [-1, 1] inputs)."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/v2/models/{model}", timeout=10)
    except httpx.HTTPError:
        raise ValueError("the gateway cannot be reached") from None
    if response.status_code != 200:
        raise ValueError(f"the gateway answered {response.status_code} for the model's metadata")
    inputs = response.json().get("inputs", [])
    return [str(i["name"]) for i in inputs if i.get("shape") == [-1, 1]]


def read_rows(path: Path, features: list[str] | None) -> tuple[list[str], np.ndarray]:
    """The dataset's numeric feature columns (or the ones named) as float32 rows."""
    frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    frame = frame.head(MAX_ROWS_LOADED)
    if features is None:
        features = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)]
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(f"dataset lacks column(s): {', '.join(missing)}")
    return features, frame[features].to_numpy(dtype=np.float32, na_value=np.nan)


def request_body(features: list[str], row: np.ndarray) -> bytes:
    """One row as per-feature named tensors (the OIP v2 JSON form)."""
    inputs = [
        {
            "name": name,
            "shape": [1],
            "datatype": "FP32",
            "data": [None if np.isnan(v) else float(v)],
        }
        for name, v in zip(features, row.tolist(), strict=True)
    ]
    return json.dumps({"inputs": inputs}).encode()


async def replay(
    url: str,
    *,
    model: str,
    features: list[str],
    rows: np.ndarray,
    rate: float,
    count: int,
    concurrency: int,
    timeout_s: float = 10.0,
) -> ReplayResult:
    """Send `count` requests at `rate` per second (rows cycled), at most `concurrency` at once."""
    endpoint = f"{url.rstrip('/')}/v2/models/{model}/infer"
    bodies = [request_body(features, rows[i % len(rows)]) for i in range(min(count, len(rows)))]
    result = ReplayResult()
    limit = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:

        async def one(i: int) -> None:
            async with limit:
                started = time.perf_counter()
                try:
                    response = await client.post(
                        endpoint,
                        content=bodies[i % len(bodies)],
                        headers={"content-type": "application/json"},
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.sent += 1
                if status != 200:
                    result.errors += 1

        begin = time.perf_counter()
        tasks = []
        for i in range(count):
            due = begin + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load generator, not waiting for a result
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - begin
    return result
