"""Ask the production Prometheus what the canary decision needs: canary and production over
the same window, and the canary's traffic since its step began.

Missing answers stay missing: a canary with no requests in the window is no window at all
(the decision holds), a missing latency or score histogram is None (never zero), and an
unreadable Prometheus is the same as no data, with the reason kept for the check run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from bot.rollout.metrics.source import MetricsError, MetricsSource, NoData, Series, Window
from evaluators.policy import CanaryPolicy
from evaluators.statistics.canary_evidence import BusinessReading, CanaryWindow, VariantReading
from evaluators.statistics.shadow_evidence import LatencyQuantiles
from gateway import names

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readings:
    window: CanaryWindow | None  # None: no canary data in the window
    step_requests: float  # canary requests since the step began (0 when none or unknown)
    production_error_rate: float | None  # production's, since the step began
    note: str = ""  # why there is no window, for the check run


def read(
    source: MetricsSource,
    *,
    model: str,
    canary_version: str,
    production_version: str,
    policy: CanaryPolicy,
    now: datetime,
    step_started_at: datetime,
    everything: bool = False,
) -> Readings:
    """`everything`: the canary answers all traffic (the last step), so production has no
    requests now; it is read over the interval just before the step began instead."""
    canary = Series(model=model, variant=names.VARIANT_CANARY, version=canary_version)
    production = Series(model=model, variant=names.VARIANT_PRODUCTION, version=production_version)
    window = Window(end=now, length=timedelta(minutes=policy.analysis_interval_minutes))
    step = Window(end=now, length=max(now - step_started_at, timedelta(seconds=1)))
    try:
        step_requests = _or_none(lambda: source.request_count(canary, step)) or 0.0
        production_rate = _or_none(lambda: source.error_rate(production, step))
        canary_reading = _variant(source, canary, window)
        if canary_reading is None or canary_reading.requests <= 0:
            return Readings(None, step_requests, production_rate, "no canary requests yet")
        reference = Window(end=step_started_at, length=window.length) if everything else window
        production_reading = _variant(source, production, reference)
        if production_reading is None:
            return Readings(None, step_requests, production_rate, "no production requests")
        business = tuple(
            BusinessReading(
                name=metric.name,
                canary=_or_none(partial(source.business_value, metric.query, canary, window)),
                production=_or_none(
                    partial(source.business_value, metric.query, production, reference)
                ),
            )
            for metric in policy.business_metrics
        )
    except MetricsError as exc:  # unreachable or malformed: no data, never healthy
        log.warning("canary %s %s: metrics unreadable: %s", model, canary_version, exc)
        return Readings(None, 0.0, None, "the metrics source could not be read")
    return Readings(
        CanaryWindow(canary=canary_reading, production=production_reading, business=business),
        step_requests,
        production_rate,
    )


def _variant(source: MetricsSource, series: Series, window: Window) -> VariantReading | None:
    requests = _or_none(lambda: source.request_count(series, window))
    if requests is None or requests <= 0:
        return None
    errors = _or_none(lambda: source.error_count(series, window)) or 0.0
    quantiles = [
        _or_none(partial(source.latency_quantile, series, window, q)) for q in (0.5, 0.95, 0.99)
    ]
    p50, p95, p99 = quantiles
    latency = (
        LatencyQuantiles(p50_ms=p50 * 1000, p95_ms=p95 * 1000, p99_ms=p99 * 1000)
        if p50 is not None and p95 is not None and p99 is not None
        else None
    )
    scores = _or_none_tuple(lambda: source.score_histogram(series, window))
    return VariantReading(requests=requests, errors=errors, latency_ms=latency, scores=scores)


def _or_none(ask: Callable[[], float]) -> float | None:
    """The answer, or None when the source holds nothing (NoData is not zero)."""
    try:
        return float(ask())
    except NoData:
        return None


def _or_none_tuple(ask: Callable[[], tuple[float, ...]]) -> tuple[float, ...] | None:
    try:
        return tuple(float(v) for v in ask())
    except NoData:
        return None
