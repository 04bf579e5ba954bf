"""Everything shadow evaluation has measured so far, as plain data for the judgement."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from evaluators.statistics.drift import FeatureDrift
from evaluators.statistics.output_anomalies import OutputAnomalies
from evaluators.statistics.paired_outputs import OutputComparison


@dataclass(frozen=True)
class NoData:
    """A metrics query that returned nothing (an empty PromQL result): never read as zero."""

    reason: str = "no data"


@dataclass(frozen=True)
class LatencyQuantiles:
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class LatencyReading:
    """The shadow's and production's latency quantiles over the same window."""

    shadow: LatencyQuantiles
    production: LatencyQuantiles


@dataclass(frozen=True)
class SegmentCount:
    """Paired requests seen in one required segment (`column=value`)."""

    column: str
    value: str
    samples: int


@dataclass(frozen=True)
class ShadowEvidence:
    elapsed: timedelta
    production_requests: int  # distinct production request ids
    paired: int  # requests logged by both production and the shadow
    coverage: float  # paired / requests that should have been mirrored (NaN: none logged)
    anomalies: OutputAnomalies
    outputs: OutputComparison
    drift: list[FeatureDrift]
    latency: LatencyReading | NoData
    segments: list[SegmentCount] = field(default_factory=list)
    missing_segment_columns: list[str] = field(default_factory=list)
    duplicates: int = 0  # log rows that repeated a request id (counted once)
