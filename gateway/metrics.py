"""The gateway's Prometheus metrics, named in `gateway.names`.

One registry per gateway process: run several processes behind a load balancer and let
Prometheus scrape each (`instance` tells them apart). The gateway never runs several workers
in one server, so prometheus-client's multiprocess mode is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway import names
from gateway.shadow_totals import Buckets, ShadowTotals

# Single-row inference is sub-millisecond; canary analysis compares p99s near a few ms.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
SCORE_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))


@dataclass(frozen=True)
class Series:
    ok: Counter
    error: Counter
    latency: Histogram
    score: Histogram


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = list(names.LABELS)
        self.requests = Counter(
            names.REQUESTS,
            "Inference requests answered or mirrored, by outcome.",
            [*labels, "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            names.LATENCY_SECONDS,
            "Model inference time inside the gateway.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.score = Histogram(
            names.SCORE,
            "Positive-class score of every answered row.",
            labels,
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            names.MIRROR_QUEUE_DEPTH,
            "Mirrored requests waiting for the shadow.",
            ["model"],
            registry=self.registry,
        )
        self.dropped = Counter(
            names.MIRROR_DROPPED,
            "Mirrored requests dropped before the shadow answered.",
            ["model", "reason"],
            registry=self.registry,
        )
        self.mirrored = Counter(
            names.MIRRORED,
            "Requests enqueued for the shadow.",
            ["model", "version"],
            registry=self.registry,
        )

        self._series: dict[tuple[str, str, str], Series] = {}
        self._mirrored: dict[tuple[str, str], Counter] = {}
        self.log_dropped = Counter(
            names.PREDICTION_LOG_DROPPED,
            "Prediction log rows lost (buffer full while the store is slow, or a failed write).",
            ["reason"],
            registry=self.registry,
        )

    def series(self, model: str, variant: str, version: str) -> Series:
        """The children of one (model, variant, version), looked up once: `labels()` takes a
        lock and builds a key on every call, on every request's path."""
        key = (model, variant, version)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = Series(
                ok=self.requests.labels(*key, names.OUTCOME_OK),
                error=self.requests.labels(*key, names.OUTCOME_ERROR),
                latency=self.latency.labels(*key),
                score=self.score.labels(*key),
            )
        return found

    def announce(self, model: str, variant: str, version: str) -> None:
        """Create a served version's series at zero before its first request.

        prometheus-client shows a labelled series only once it is used, so Prometheus would
        first see it already at N, and `increase()` has no earlier sample to count those N from:
        a new canary's or shadow's first requests (and errors) would be missing from every window.
        """
        labels = (model, variant, version)
        for outcome in (names.OUTCOME_OK, names.OUTCOME_ERROR):
            self.requests.labels(*labels, outcome)
        self.latency.labels(*labels)
        self.score.labels(*labels)
        if variant == names.VARIANT_SHADOW:
            self.mirrored.labels(model, version)

    def mirrored_to(self, model: str, version: str) -> Counter:
        """The mirrored counter of one shadow version, looked up once (see `series`)."""
        key = (model, version)
        found = self._mirrored.get(key)
        if found is None:
            found = self._mirrored[key] = self.mirrored.labels(model, version)
        return found

    def add_totals(self, model: str, variant: str, version: str, totals: ShadowTotals) -> None:
        """A batch the shadow's worker answered, as if each request had been counted here."""
        series = self.series(model, variant, version)
        if totals.ok:
            series.ok.inc(totals.ok)
        if totals.error:
            series.error.inc(totals.error)
        add_buckets(series.latency, totals.latency)
        add_buckets(series.score, totals.score)
        for _ in range(totals.nan_scores):
            series.score.observe(float("nan"))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def add_buckets(child: Histogram, buckets: Buckets) -> None:
    """Add observations summarised as (bucket, count, sum) to one labelled histogram.

    prometheus-client has no bulk observe. Its histogram keeps a count per bucket (not
    cumulative) and a sum, and `observe` adds 1 to the first bucket whose bound holds the value:
    adding a bucket's count there is the same. tests/test_shadow_totals.py checks the exposition
    equals observing every value, so an upgrade that changes this fails there."""
    for index, count, total in buckets:
        child._buckets[index].inc(count)
        child._sum.inc(total)
