"""The Prometheus metrics source: instant queries over Prometheus' HTTP API at the bot's time.

`GET /api/v1/query?query=…&time=<window end>`, with a bounded timeout (ours and Prometheus'
own) and a bounded answer size. An empty vector or NaN is `NoData`; an unreachable Prometheus,
an error status or an answer too large is `MetricsUnavailable` (fail closed).
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import datetime
from typing import Any

import httpx

from bot.base.tls import shared_tls
from bot.rollout.metrics import queries
from bot.rollout.metrics.source import (
    MetricsUnavailable,
    MirrorCounts,
    NoData,
    Series,
    Window,
)
from gateway.metrics import SCORE_BUCKETS
from gateway.names import VARIANT_SHADOW

# Bucket counts of one histogram agree to about this much after `increase()` extrapolation.
_ROUNDING = 1e-6


class PrometheusSource:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        max_response_bytes: int = 1_000_000,
    ) -> None:
        self._url = base_url.rstrip("/") + "/api/v1/query"
        self._timeout_s = timeout_s
        self._max_bytes = max_response_bytes
        self._client = httpx.Client(timeout=timeout_s, verify=shared_tls())

    def close(self) -> None:
        self._client.close()

    # -- the port ---------------------------------------------------------------------------

    def request_count(self, series: Series, window: Window) -> float:
        """Requests in the window (0 when the series exists and none came)."""
        return self.value(queries.request_count(series, window), at=window.end)

    def error_rate(self, series: Series, window: Window) -> float:
        """Errors / requests; NoData without requests."""
        return self.value(queries.error_rate(series, window), at=window.end)

    def error_count(self, series: Series, window: Window) -> float:
        """Errors in the window (0 with requests and no error); NoData without requests."""
        return self.value(queries.error_count(series, window), at=window.end)

    def latency_quantile(self, series: Series, window: Window, quantile: float) -> float:
        """Latency quantile in seconds; NoData without requests."""
        return self.value(queries.latency_quantile(series, window, quantile), at=window.end)

    def score_quantile(self, series: Series, window: Window, quantile: float) -> float:
        """Score quantile; NoData without scored requests."""
        return self.value(queries.score_quantile(series, window, quantile), at=window.end)

    def score_mean(self, series: Series, window: Window) -> float:
        """Mean score; NoData without scored requests."""
        return self.value(queries.score_mean(series, window), at=window.end)

    def score_histogram(self, series: Series, window: Window) -> tuple[float, ...]:
        """Scores per SCORE_BUCKETS bucket, de-cumulated, +Inf folded into the last bucket."""
        result = self._vector(queries.score_buckets(series, window), at=window.end)
        if not result:
            raise NoData("no score histogram")
        if len(result) != len(SCORE_BUCKETS) + 1:
            raise MetricsUnavailable("the score histogram's buckets are not the gateway's")
        cumulative = dict(self._bucket(sample) for sample in result)
        bounds = sorted(cumulative)
        if len(bounds) != len(result):
            raise MetricsUnavailable("the score histogram's buckets are not the gateway's")
        expected = [*SCORE_BUCKETS, math.inf]
        if any(not math.isclose(a, b) for a, b in zip(bounds, expected, strict=True)):
            raise MetricsUnavailable("the score histogram's buckets are not the gateway's")
        running = [cumulative[bound] for bound in bounds]
        if any(math.isnan(count) for count in running) or not running[-1] > 0:
            raise NoData("no scores in the window")
        counts = [running[0]]
        for before, now in itertools.pairwise(running):
            step = now - before
            if step < -_ROUNDING * max(running[-1], 1.0):
                raise MetricsUnavailable("the score histogram's buckets are not cumulative")
            counts.append(max(step, 0.0))
        overflow = counts.pop()  # above the last bound: scores of exactly 1.0 rounding up
        counts[-1] += overflow
        return tuple(counts)

    def business_value(self, query_template: str, series: Series, window: Window) -> float:
        """One finite sample of the filled query; Inf, like NaN, is NoData."""
        try:
            promql = queries.business(query_template, series, window)
        except ValueError:
            raise MetricsUnavailable(
                "the business metric's query is not a valid template"
            ) from None
        number = self.value(promql, at=window.end)
        if math.isinf(number):
            raise NoData(promql)
        return number

    def mirror_counts(self, model: str, version: str, window: Window) -> MirrorCounts:
        """Mirrored to `version` and dropped; NoData when the gateway never reported mirroring."""
        Series(model, VARIANT_SHADOW, version)  # validates both names
        mirrored = self.value(queries.mirrored(model, version, window), at=window.end)
        dropped = self.value(queries.mirror_dropped(model, window), at=window.end)
        return MirrorCounts(mirrored=mirrored, dropped=dropped)

    # -- one query --------------------------------------------------------------------------

    def value(self, promql: str, *, at: datetime) -> float:
        """The single number `promql` evaluates to at `at`; NoData for an empty vector or NaN."""
        result = self._vector(promql, at=at)
        if not result:
            raise NoData(promql)
        if len(result) != 1:
            raise MetricsUnavailable("Prometheus answered more than one series")
        try:
            number = float(result[0]["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            raise MetricsUnavailable("Prometheus answered in an unexpected shape") from None
        if math.isnan(number):
            raise NoData(promql)
        return number

    @staticmethod
    def _bucket(sample: dict[str, Any]) -> tuple[float, float]:
        """(bucket bound, cumulative count) of one `sum by (le)` sample."""
        try:
            return float(sample["metric"]["le"]), float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            raise MetricsUnavailable("Prometheus answered in an unexpected shape") from None

    def _vector(self, promql: str, *, at: datetime) -> list[dict[str, Any]]:
        params = {
            "query": promql,
            "time": f"{at.timestamp():.3f}",
            "timeout": f"{self._timeout_s:g}s",
        }
        body = self._get(params)
        try:
            answer = json.loads(body)
        except ValueError:
            raise MetricsUnavailable("Prometheus answered something that is not JSON") from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            kind = answer.get("errorType", "unknown") if isinstance(answer, dict) else "unknown"
            raise MetricsUnavailable(f"Prometheus refused the query ({str(kind)[:40]})")
        data = answer.get("data")
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            raise MetricsUnavailable("Prometheus answered in an unexpected shape")
        result = data.get("result")
        if not isinstance(result, list):
            raise MetricsUnavailable("Prometheus answered in an unexpected shape")
        return result

    def _get(self, params: dict[str, str]) -> bytes:
        try:
            with self._client.stream("GET", self._url, params=params) as response:
                # Prometheus answers 400/422/503 with a JSON error body; read it like a success.
                if response.status_code not in (200, 400, 422, 503):
                    raise MetricsUnavailable(f"Prometheus answered HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise MetricsUnavailable("Prometheus's answer was larger than allowed")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException:
            raise MetricsUnavailable("Prometheus did not answer in time") from None
        except httpx.HTTPError:
            raise MetricsUnavailable("Prometheus could not be reached") from None
