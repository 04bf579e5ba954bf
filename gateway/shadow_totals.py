"""What a batch of shadow answers adds to the gateway's metrics, summed where it was scored.

The shadow's worker process sends back, per batch, counts and per-bucket (count, sum) of the
latencies and scores rather than every value, so the gateway process spends a few calls per
batch on them, not several per request: its background threads' work holds the GIL that
production's event loop waits for, and per-request work there tripled production's p99
(docs/gateway.md, run G). Buckets are Prometheus' `le` buckets: value <= bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

# (bucket index, observations, their sum); index len(bounds) is +Inf
Buckets = list[tuple[int, int, float]]


def bucketed(values: NDArray[np.float64], bounds: tuple[float, ...]) -> tuple[Buckets, int]:
    """`values` summarised by bucket, and how many are NaN (they fall in no bucket)."""
    nan = np.isnan(values)
    finite_or_inf = values[~nan]
    index = np.searchsorted(np.asarray(bounds, dtype=np.float64), finite_or_inf, side="left")
    counts = np.bincount(index, minlength=len(bounds) + 1)
    sums = np.bincount(index, weights=finite_or_inf, minlength=len(bounds) + 1)
    out = [(int(i), int(counts[i]), float(sums[i])) for i in np.flatnonzero(counts)]
    return out, int(nan.sum())


@dataclass
class ShadowTotals:
    """One batch's answers: counts, latency (seconds) and score buckets."""

    ok: int = 0
    error: int = 0
    not_loaded: int = 0  # the worker could not load the shadow: counted as dropped
    latency: Buckets = field(default_factory=list)
    score: Buckets = field(default_factory=list)
    nan_scores: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "not_loaded": self.not_loaded,
            "latency": [list(b) for b in self.latency],
            "score": [list(b) for b in self.score],
            "nan_scores": self.nan_scores,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShadowTotals:
        def buckets(raw: Any) -> Buckets:
            return [(int(i), int(n), float(s)) for i, n, s in raw]

        return cls(
            ok=int(data["ok"]),
            error=int(data["error"]),
            not_loaded=int(data["not_loaded"]),
            latency=buckets(data["latency"]),
            score=buckets(data["score"]),
            nan_scores=int(data["nan_scores"]),
        )
