"""The Prometheus metrics source: instant queries over Prometheus' HTTP API at the bot's time.

`GET /api/v1/query?query=…&time=<window end>`, with a bounded timeout (ours and Prometheus'
own) and a bounded answer size. An empty vector or NaN is `NoData`; an unreachable Prometheus,
an error status or an answer too large is `MetricsUnavailable` (fail closed).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import httpx

from bot.rollout.metrics import queries
from bot.rollout.metrics.source import (
    MetricsUnavailable,
    MirrorCounts,
    NoData,
    Series,
    Window,
)
from gateway.names import VARIANT_SHADOW


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
        self._client = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    # -- the port ---------------------------------------------------------------------------

    def request_count(self, series: Series, window: Window) -> float:
        """Requests in the window (0 when the series exists and none came)."""
        return self.value(queries.request_count(series, window), at=window.end)

    def error_rate(self, series: Series, window: Window) -> float:
        """Errors / requests; NoData without requests."""
        return self.value(queries.error_rate(series, window), at=window.end)

    def latency_quantile(self, series: Series, window: Window, quantile: float) -> float:
        """Latency quantile in seconds; NoData without requests."""
        return self.value(queries.latency_quantile(series, window, quantile), at=window.end)

    def score_quantile(self, series: Series, window: Window, quantile: float) -> float:
        """Score quantile; NoData without scored requests."""
        return self.value(queries.score_quantile(series, window, quantile), at=window.end)

    def score_mean(self, series: Series, window: Window) -> float:
        """Mean score; NoData without scored requests."""
        return self.value(queries.score_mean(series, window), at=window.end)

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
