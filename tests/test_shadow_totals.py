"""A batch of shadow answers summed in the worker process shows on /metrics exactly as if the
gateway had observed every value itself: bucket counts, sums, counts, NaN scores included."""

from __future__ import annotations

import math

import numpy as np

from gateway.metrics import LATENCY_BUCKETS, SCORE_BUCKETS, GatewayMetrics
from gateway.shadow_totals import ShadowTotals, bucketed


def _exposition(metrics: GatewayMetrics) -> list[str]:
    """The text Prometheus scrapes, without the creation timestamps (they differ by design)."""
    return [
        line
        for line in metrics.render().decode().splitlines()
        if "_created" not in line and not line.startswith("#")
    ]


def test_summed_buckets_render_as_the_values_observed_one_by_one() -> None:
    rng = np.random.default_rng(7)
    scores = np.concatenate(
        [rng.random(500), [0.0, 0.05, 0.1, 1.0, 0.95, math.inf, -0.5, math.nan, math.nan]]
    )
    seconds = np.concatenate([rng.exponential(0.004, 300), list(LATENCY_BUCKETS), [9.0]])

    one_by_one = GatewayMetrics()
    series = one_by_one.series("churn", "shadow", "1.1.0")
    for value in seconds:
        series.latency.observe(float(value))
    for value in scores:
        series.score.observe(float(value))
    series.ok.inc(len(seconds))
    series.error.inc(3)

    summed = GatewayMetrics()
    score_buckets, nan = bucketed(scores, SCORE_BUCKETS)
    half = len(seconds) // 2  # two batches, added one after the other as the worker sends them
    batches = [
        ShadowTotals(
            ok=len(seconds),
            error=3,
            latency=bucketed(seconds[:half], LATENCY_BUCKETS)[0],
            score=score_buckets,
            nan_scores=nan,
        ),
        ShadowTotals(latency=bucketed(seconds[half:], LATENCY_BUCKETS)[0]),
    ]
    for totals in batches:
        # What crosses the pipe from the worker is JSON.
        summed.add_totals("churn", "shadow", "1.1.0", ShadowTotals.from_json(totals.to_json()))

    assert nan == 2
    got, want = _exposition(summed), _exposition(one_by_one)
    assert [line for line in got if "_sum" not in line] == [
        line for line in want if "_sum" not in line
    ]
    # Sums agree to rounding (summed in another order); a NaN score makes the score sum NaN.
    for mine, theirs in zip(got, want, strict=True):
        if "_sum" in mine:
            a, b = float(mine.rsplit(" ", 1)[1]), float(theirs.rsplit(" ", 1)[1])
            assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9)


def test_an_empty_batch_adds_nothing() -> None:
    metrics = GatewayMetrics()
    metrics.announce("churn", "shadow", "1.1.0")
    before = _exposition(metrics)
    metrics.add_totals("churn", "shadow", "1.1.0", ShadowTotals())
    assert _exposition(metrics) == before
