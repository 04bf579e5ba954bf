"""Choose the metrics source from the operator's configuration."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from bot.rollout.metrics.prometheus import PrometheusSource
from bot.rollout.metrics.source import MetricsSource


class PrometheusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["prometheus"] = "prometheus"
    url: HttpUrl = Field(description="Prometheus' base URL, e.g. http://prometheus:9090")
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_response_bytes: int = Field(default=1_000_000, ge=1_000, le=100_000_000)


def make_metrics_source(config: PrometheusConfig) -> MetricsSource:
    """The metrics source `config` names."""
    return PrometheusSource(
        str(config.url), timeout_s=config.timeout_s, max_response_bytes=config.max_response_bytes
    )
