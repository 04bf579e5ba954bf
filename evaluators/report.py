"""The typed evaluation report: what the evaluators return and the templates render."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Outcome(StrEnum):
    IMPROVED = "improved"  # interval entirely above +margin
    REGRESSED = "regressed"  # interval entirely below -tolerance
    UNCHANGED = "unchanged"  # interval inside the tolerance band, or neither above
    TOO_SMALL = "too_small"  # not judged: below the minimum segment size


class MetricComparison(_Model):
    """One metric, candidate vs production on the same rows, with a paired interval."""

    metric: str
    higher_is_better: bool
    candidate: float
    baseline: float
    delta: float = Field(description="candidate - baseline, in the metric's own units")
    ci_low: float
    ci_high: float
    method: str = Field(description="e.g. 'delong', 'paired bootstrap (1000 resamples)'")
    p_value: float | None = None
    adjusted_p_value: float | None = None
    outcome: Outcome
    se: float | None = Field(default=None, description="Standard error of delta.")
    interval: str = Field(
        default="", description="What ci_low..ci_high is, e.g. 'unadjusted 95% CI'."
    )
    adjusted_ci_low: float | None = None
    adjusted_ci_high: float | None = None
    adjusted_interval: str = Field(
        default="", description="What adjusted_ci_low..high is, e.g. a Bonferroni simultaneous CI."
    )


class SegmentComparison(_Model):
    column: str
    value: str
    rows: int
    positives: int | None = None
    metrics: list[MetricComparison] = Field(default_factory=list)
    outcome: Outcome


class ReliabilityBin(_Model):
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


class CalibrationStats(_Model):
    ece_equal_width: float
    ece_equal_mass: float | None = Field(
        default=None, description="None from the dask engine (not mergeable exactly)."
    )
    brier: float
    reliability: list[ReliabilityBin]


class ThresholdShift(_Model):
    threshold: float
    share_above_candidate: float
    share_above_baseline: float
    share_crossing: float = Field(description="Rows on different sides of the threshold.")


class CalibrationSection(_Model):
    bins: int
    candidate: CalibrationStats
    baseline: CalibrationStats
    ece_delta: float
    threshold_shifts: list[ThresholdShift] = Field(default_factory=list)
    within_tolerance: bool


class LatencyStats(_Model):
    single_p50_ms: float
    single_p95_ms: float
    single_p99_ms: float
    batch_p50_ms: float
    batch_p95_ms: float
    batch_p99_ms: float
    throughput_rows_per_s: float
    single_samples_ms: list[float] = Field(default_factory=list, description="For plots.")


class RatioBounds(_Model):
    """candidate / production: the median over rounds of each round's ratio, with one-sided
    distribution-free confidence bounds (sign-test order statistics over rounds)."""

    ratio: float
    low: float = Field(description="One-sided lower confidence bound.")
    high: float = Field(description="One-sided upper confidence bound.")


class LatencySection(_Model):
    concurrency: int
    batch_size: int
    requests: int
    candidate: LatencyStats
    baseline: LatencyStats
    p99_ratio: float
    max_p99_ratio: float
    within_tolerance: bool
    rounds: int = Field(default=0, description="Interleaved rounds measured (0: one block).")
    confidence: float = 0.95
    p99: RatioBounds | None = Field(default=None, description="Single-row p99 ratio.")
    candidate_p99_high_ms: float | None = Field(
        default=None, description="One-sided upper bound of the candidate's single-row p99."
    )
    throughput_rows: int = Field(default=0, description="Rows per batch for throughput.")
    batch_time: RatioBounds | None = Field(
        default=None, description="Candidate / production time for a large batch (1 / throughput)."
    )
    candidate_rows_per_s_low: float | None = Field(
        default=None, description="One-sided lower bound of the candidate's throughput."
    )


class ClaimCheck(_Model):
    metric: str
    claimed: float
    reproduced: float | None
    difference: float | None
    flagged: bool
    note: str = ""


class LeakageCheck(_Model):
    id_column: str | None
    manifest_ids: int
    overlapping: int
    examples: list[str] = Field(default_factory=list)
    passed: bool
    note: str = ""


class Fingerprint(_Model):
    candidate_tree_sha256: str
    candidate_weights_sha256: str
    baseline_tree_sha256: str | None
    baseline_weights_sha256: str | None
    benchmark_sha256: str
    policy_sha256: str
    evaluator_version: str
    digest: str = Field(description="sha256 over all of the above: what approvals bind to.")


class Decision(StrEnum):
    AUTO_PROMOTE_ELIGIBLE = "auto_promote_eligible"
    NEEDS_REVIEW = "needs_review"
    FAIL = "fail"


class Verdict(_Model):
    decision: Decision
    reasons: list[str]


class RunStatus(StrEnum):
    COMPLETED = "completed"
    TIMED_OUT = "timed_out"
    ERROR = "error"


class StatisticsInfo(_Model):
    confidence: float
    interval_methods: dict[str, str] = Field(description="metric -> how its interval was made")
    correction: str = Field(description="multiple-comparison control across segments")
    bootstrap_resamples: int
    seed: int


class BenchmarkInfo(_Model):
    uri: str
    sha256: str
    rows: int
    label_column: str
    segment_columns: list[str]


class ModelIdentity(_Model):
    """Who and what the candidate is, as reviewers recognise it."""

    description: str | None = Field(default=None, description="e.g. config's hyperparameters.model")
    training_snapshot: str | None = None
    changelog_excerpt: str | None = Field(default=None, description="The newest CHANGELOG entry.")
    commit_sha: str | None = None  # set by the bot: the PR head evaluated
    author: str | None = None  # set by the bot: the PR's author


class EvaluationReport(_Model):
    model: str
    task: str
    status: RunStatus = RunStatus.COMPLETED
    error: str | None = None
    created_at: datetime
    benchmark: BenchmarkInfo | None = None
    statistics: StatisticsInfo | None = None
    primary_metric: str
    identity: ModelIdentity | None = None
    baseline_label: str = Field(
        default="production", description="What the candidate was compared with."
    )
    overall: list[MetricComparison] = Field(default_factory=list)
    segments: list[SegmentComparison] = Field(default_factory=list)
    calibration: CalibrationSection | None = None
    latency: LatencySection | None = None
    claimed: list[ClaimCheck] = Field(default_factory=list)
    leakage: LeakageCheck | None = None
    fingerprint: Fingerprint | None = None
    verdict: Verdict | None = None
    durations_s: dict[str, float] = Field(default_factory=dict)
