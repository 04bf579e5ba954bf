"""The promotion policy (`.shipyard.yml`), validated by pydantic.

The bot always reads it from the base branch so a PR cannot loosen its own gate.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evaluators.errors import DocumentError, format_validation_error, load_yaml_with_lines
from evaluators.metrics.registry import REGISTRY as METRIC_REGISTRY

# Every metric name any task registers: a typo fails when the policy is read, not mid-evaluation.
KNOWN_METRICS: tuple[str, ...] = tuple(sorted({name for _, name in METRIC_REGISTRY}))


def _known_metric(name: str) -> str:
    if name not in KNOWN_METRICS:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(KNOWN_METRICS)}")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BenchmarkPolicy(_Strict):
    uri: str = Field(description="Local path, file://, https:// or an fsspec URI (s3://, gs://).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Pin: the benchmark file's sha256.")
    label_column: str = "label"
    id_column: str | None = Field(default=None, description="Row ids, used for the leakage check.")
    segment_columns: list[str] = Field(default_factory=list)


class TrackedMetric(_Strict):
    name: str
    margin: float = Field(default=0.0, ge=0, description="Improvement needed to count as clear.")
    tolerance: float = Field(default=0.0, ge=0, description="Largest regression still accepted.")

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str) -> str:
        return _known_metric(value)


class CorrectionMethod(StrEnum):
    HOLM = "holm"
    BENJAMINI_HOCHBERG = "benjamini-hochberg"


class SegmentPolicy(_Strict):
    min_size: int = Field(default=200, ge=1, description="Below this, a segment is not judged.")
    min_positives: int = Field(default=20, ge=0)
    tolerance: float = Field(default=0.0, ge=0, description="Regression accepted on a segment.")
    correction: CorrectionMethod = CorrectionMethod.HOLM
    metrics: list[str] | None = Field(
        default=None, description="Metrics judged per segment; default: the primary metric."
    )
    on_regression: Literal["needs_review", "fail"] = Field(
        default="needs_review",
        description="A segment that regresses while the model improves overall is a trade-off "
        "for a person to judge (default), or a failure.",
    )
    important: list[str] = Field(
        default_factory=list,
        description="Segments that matter: `column=value`, or `column` for all of its values.",
    )
    small: Literal["review", "ignore"] | None = Field(
        default=None,
        description="Whether a segment too small to judge blocks auto-promotion (review) or not "
        "(ignore). Default: review for important segments, ignore for the rest.",
    )

    def is_important(self, column: str, value: str) -> bool:
        return column in self.important or f"{column}={value}" in self.important

    def small_blocks(self, column: str, value: str) -> bool:
        """Does this too-small-to-judge segment stop auto-promotion?"""
        if self.small is not None:
            return self.small == "review"
        return self.is_important(column, value)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        return [_known_metric(name) for name in value] if value is not None else None


class CalibrationPolicy(_Strict):
    bins: int = Field(default=10, ge=2, le=100)
    max_ece_increase: float = Field(default=0.02, ge=0)
    thresholds: list[float] = Field(default_factory=lambda: [0.5])
    max_threshold_shift: float = Field(
        default=0.05, ge=0, le=1, description="Largest share of rows that may cross a threshold."
    )


class LatencyPolicy(_Strict):
    enabled: bool = True
    max_p99_ratio: float = Field(default=1.25, gt=0, description="candidate p99 / production p99.")
    floor_ms: float = Field(
        default=2.0,
        ge=0,
        description="A candidate p99 at or under this is fast enough whatever the ratio: "
        "sub-millisecond timings are mostly scheduler noise.",
    )
    concurrency: int = Field(default=2, ge=1, le=64)
    batch_size: int = Field(default=256, ge=1)
    requests: int = Field(default=300, ge=10)
    rounds: int = Field(
        default=20,
        ge=5,
        le=200,
        description="Candidate and production are measured alternately in this many rounds; "
        "ratios are judged by their confidence bounds over rounds (5 at least: fewer cannot "
        "bound a median at 95%).",
    )
    throughput_rows: int = Field(
        default=4096, ge=1, description="Rows per batch when measuring throughput (rows/s)."
    )
    max_batch_ratio: float | None = Field(
        default=None,
        gt=0,
        description="candidate / production time for a large batch (1 / throughput ratio); "
        "default: max_p99_ratio.",
    )
    min_rows_per_s: float = Field(
        default=10_000,
        ge=0,
        description="A candidate whose throughput is shown to be at least this is fast enough "
        "whatever the ratio (0: always judge the ratio).",
    )


class StatisticsPolicy(_Strict):
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    method: Literal["auto", "bootstrap", "delong"] = "auto"
    bootstrap_resamples: int = Field(default=1000, ge=100, le=100_000)
    seed: int = 0
    engine: Literal["local", "dask"] = Field(
        default="local",
        description="Where the evaluation runs: this process, or the operator's Dask cluster "
        "(a partitioned benchmark; docs/distributed-evaluation.md). The scheduler address "
        "comes from the operator, never from the repository.",
    )
    range_rows: int = Field(
        default=2_000_000,
        ge=1_000,
        le=1_000_000_000,
        description="Dask engine: benchmark rows per score range. The merged count tables are "
        "cut into ranges of about this many rows (at most 256 ranges) and each task holds one "
        "range's: lower it when workers run short of memory, raise it to run fewer tasks.",
    )


class TrustPolicy(_Strict):
    claimed_tolerance: float = Field(default=0.02, ge=0)


class ShadowDriftPolicy(_Strict):
    """Input drift of production traffic against the training reference, judged by PSI.

    PSI < 0.1 is the usual "no real change", 0.1-0.25 "moderate", > 0.25 "major" (Siddiqi,
    Credit Risk Scorecards, 2006). KS is reported but never judged: at production volume its
    p-value flags harmless shifts (0.05σ on 50k rows: p ≈ 1e-13, PSI 0.004).
    """

    psi_warn: float = Field(default=0.1, ge=0, description="PSI from which drift is reported.")
    psi_fail: float = Field(default=0.25, gt=0, description="PSI from which drift fails shadow.")
    bins: int = Field(
        default=10, ge=2, le=100, description="Quantile bins of a numeric feature's profile."
    )
    max_categories: int = Field(
        default=50, ge=1, le=1000, description="Categories kept per feature; the rest is 'other'."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ShadowDriftPolicy:
        if self.psi_fail < self.psi_warn:
            raise ValueError(
                f"psi_fail ({self.psi_fail}) must be at least psi_warn ({self.psi_warn})"
            )
        return self


class ShadowAnomalyPolicy(_Strict):
    """What fails shadow at once, whatever the duration: errors, invalid or constant outputs."""

    max_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="Share of mirrored requests that may fail."
    )
    output_min: float = Field(default=0.0, description="Smallest valid score.")
    output_max: float = Field(default=1.0, description="Largest valid score.")
    max_invalid_output_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of scores that may be NaN, infinite or out of range (0: none).",
    )
    constant_after: int = Field(
        default=1000,
        ge=2,
        description="Scores needed before a constant output (while production's varies) fails.",
    )
    constant_spread: float = Field(
        default=1e-9, ge=0, description="A score range at or below this counts as constant."
    )

    @model_validator(mode="after")
    def _range(self) -> ShadowAnomalyPolicy:
        if self.output_max <= self.output_min:
            raise ValueError(
                f"output_max ({self.output_max}) must be above output_min ({self.output_min})"
            )
        return self


class ShadowPolicy(_Strict):
    """Pipeline step 3: the candidate on mirrored production traffic (docs/shadow.md)."""

    required: bool = Field(
        default=False, description="Whether the promotion gate waits for shadow to pass."
    )
    mirror_share: float = Field(
        default=1.0, gt=0, le=1, description="Share of production requests mirrored."
    )
    min_duration_hours: float = Field(default=24, ge=0)
    max_duration_hours: float = Field(
        default=72, gt=0, description="Without enough evidence by then: inconclusive."
    )
    min_samples: int = Field(
        default=10_000,
        ge=0,
        description="Paired requests needed; raised to what flip_rate_effect needs when larger.",
    )
    min_coverage: float = Field(
        default=0.99,
        ge=0,
        le=1,
        description="Paired requests / mirrored production requests (mirror drops are measured).",
    )
    segment_min_samples: int = Field(
        default=200, ge=0, description="Paired requests needed in every required segment."
    )
    segment_columns: list[str] | None = Field(
        default=None,
        description="Segment columns whose every value needs segment_min_samples; default: the "
        "benchmark's segment_columns.",
    )
    max_flip_rate: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="Largest share of decisions the candidate may flip at a threshold on live "
        "traffic; default: calibration.max_threshold_shift, the same limit as on the benchmark.",
    )
    flip_rate_effect: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Smallest excess over max_flip_rate shadow must detect; sizes the samples.",
    )
    power: float = Field(
        default=0.8, ge=0.5, lt=1, description="Chance of detecting that excess when it is real."
    )
    max_latency_ratio: float = Field(
        default=1.25, gt=0, description="Shadow p99 / production p99 under the same traffic."
    )
    drift: ShadowDriftPolicy = ShadowDriftPolicy()
    anomalies: ShadowAnomalyPolicy = ShadowAnomalyPolicy()

    @model_validator(mode="after")
    def _consistent(self) -> ShadowPolicy:
        if self.max_duration_hours < self.min_duration_hours:
            raise ValueError(
                f"max_duration_hours ({self.max_duration_hours}) must be at least "
                f"min_duration_hours ({self.min_duration_hours})"
            )
        return self


class MetricDirection(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


# `{name}` in a business metric's query; PromQL's own braces hold matchers, never a bare name.
QUERY_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
QUERY_LABEL_PLACEHOLDERS = ("model", "variant", "version")
QUERY_WINDOW_PLACEHOLDER = "window"


def check_query_template(query: str) -> str:
    """The query unchanged, or ValueError: only the known placeholders, label ones in quotes."""
    for match in QUERY_PLACEHOLDER.finditer(query):
        name = match.group(1)
        if name == QUERY_WINDOW_PLACEHOLDER:
            continue
        if name not in QUERY_LABEL_PLACEHOLDERS:
            raise ValueError(
                "a business query's placeholders are {model}, {variant}, {version} and {window}; "
                f"{{{name[:40]}}} is not one of them"
            )
        quoted = (
            query[match.start() - 1 : match.start()] == '"'
            and query[match.end() : match.end() + 1] == '"'
        )
        if not quoted:
            raise ValueError(f'{{{name}}} must stand inside double quotes: label="{{{name}}}"')
    return query


class BusinessMetric(_Strict):
    """A team's own metric, compared canary against production in the same window.

    `query` is PromQL with the placeholders `{model}`, `{variant}` and `{version}` (each inside
    double quotes, as a label value: `model="{model}"`) and `{window}` (the analysis window as a
    duration, `300s`: `rate(orders_total{model="{model}"}[{window}])`). Shipyard fills them with
    validated label values and asks once for the canary, once for production; the query must
    answer one sample.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$")
    query: str = Field(min_length=1, max_length=2000)

    @field_validator("query")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return check_query_template(value)

    direction: MetricDirection = MetricDirection.HIGHER_IS_BETTER
    tolerance: float = Field(
        default=0.05, ge=0, description="Relative change allowed in the worse direction."
    )


class CanaryErrorPolicy(_Strict):
    tolerance: float = Field(
        default=0.005,
        ge=0,
        le=1,
        description="Absolute rise in error rate (canary - production) allowed before the "
        "two-proportion test may call a breach.",
    )


class CanaryLatencyPolicy(_Strict):
    max_p50_ratio: float = Field(default=1.25, gt=0)
    max_p95_ratio: float = Field(default=1.25, gt=0)
    max_p99_ratio: float = Field(default=1.25, gt=0)
    floor_ms: float = Field(
        default=1.0,
        ge=0,
        description="A canary quantile under this many ms is fast enough whatever the ratio.",
    )


class CanaryPolicy(_Strict):
    """Pipeline step 5: the merged model takes a growing share of production traffic."""

    enabled: bool = True
    steps: list[int] = Field(
        default_factory=lambda: [5, 25, 100],
        description="Percent of live traffic the canary answers at each step; ends at 100.",
    )
    hold_minutes: float = Field(default=60, ge=0, description="Minimum time at each step.")
    analysis_interval_minutes: float = Field(
        default=5, gt=0, description="Each analysis compares canary and production over this."
    )
    min_requests: int = Field(
        default=500, ge=1, description="Canary requests a step needs before it may advance."
    )
    min_events: int = Field(
        default=10,
        ge=0,
        description="Expected errors (at production's rate) a step needs before a clean error "
        "rate counts as evidence, for rare outcomes.",
    )
    failure_limit: int = Field(
        default=3,
        ge=1,
        description="Analyses out of tolerance before rolling back, counted for the whole "
        "rollout (an error rise significant in its own window only, a slow quantile on too few "
        "requests to be sure); a breach significant across all the rollout's analyses rolls back "
        "at once.",
    )
    bake_minutes: float = Field(default=30, ge=0, description="Time at 100% before promotion.")
    max_hold_minutes: float = Field(
        default=240,
        gt=0,
        description="A step that cannot move for this long (no data, too few requests, no "
        "passing analysis) pauses and pages on-call; counted from the step's start, or from the "
        "last analysis with data.",
    )
    error_rate: CanaryErrorPolicy = CanaryErrorPolicy()
    latency: CanaryLatencyPolicy = CanaryLatencyPolicy()
    max_output_psi: float = Field(
        default=0.25,
        gt=0,
        description="Population stability index of the canary's scores against its own "
        "shadow distribution; judged once the canary has enough scores that a PSI above it is "
        "more than noise.",
    )
    business_metrics: list[BusinessMetric] = Field(default_factory=list, max_length=20)
    promote_approvers: list[str] = Field(
        default_factory=list,
        description="Logins or org/team slugs who may /promote (skip the remaining steps); "
        "empty: review.approvers.",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[int]) -> list[int]:
        if not value or value[-1] != 100:
            raise ValueError("canary steps must end at 100")
        if any(not 0 < step <= 100 for step in value):
            raise ValueError("each canary step is a percent between 1 and 100")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("canary steps must increase")
        return value


class MonitoringDriftPolicy(_Strict):
    """Drift thresholds, all effect sizes (a p-value never raises an alarm: at 50k rows KS
    calls a shift "significant" whose PSI is 0.004).

    PSI < 0.1 is "no real change", 0.1-0.25 "moderate", > 0.25 "major" (Siddiqi 2006).
    Jensen-Shannon distance (base 2, in [0, 1]) of 0.1 is about PSI 0.055 for small changes,
    0.2 about PSI 0.22. Wasserstein is in reference standard deviations: 0.1 is a mean shift of
    a tenth of a standard deviation.
    """

    psi_warn: float = Field(default=0.1, ge=0, description="PSI from which a feature warns.")
    psi_critical: float = Field(default=0.25, gt=0, description="PSI from which it drifts.")
    js_warn: float = Field(
        default=0.1, ge=0, le=1, description="Jensen-Shannon distance (categories) that warns."
    )
    js_critical: float = Field(default=0.2, gt=0, le=1)
    wasserstein_warn: float = Field(
        default=0.1,
        ge=0,
        description="Wasserstein distance in reference standard deviations (numbers) that warns.",
    )
    wasserstein_critical: float = Field(default=0.25, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringDriftPolicy:
        for name in ("psi", "js", "wasserstein"):
            warn, critical = getattr(self, f"{name}_warn"), getattr(self, f"{name}_critical")
            if critical < warn:
                raise ValueError(
                    f"{name}_critical ({critical}) must be at least {name}_warn ({warn})"
                )
        return self


class MonitoringQualityPolicy(_Strict):
    """Data-quality limits per window. Shares are of the window's rows."""

    max_missing_increase: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Rise in a feature's missing-value share over the reference that warns.",
    )
    max_out_of_range: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Share of a numeric feature outside the reference's [min, max] that warns.",
    )
    max_unseen: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Share of a categorical feature in categories the reference does not name "
        "(beyond its own 'other' share) that warns.",
    )
    volume_low: float = Field(
        default=0.5, ge=0, lt=1, description="Rows below this fraction of the usual level warn."
    )
    volume_high: float = Field(
        default=2.0, gt=1, description="Rows above this multiple of the usual level warn."
    )
    volume_history: int = Field(
        default=24 * 7, ge=1, le=10_000, description="Past windows the usual level is taken from."
    )
    volume_min_history: int = Field(
        default=6, ge=1, description="Past windows needed before volume is judged."
    )


class MonitoringPolicy(_Strict):
    """Production monitoring after a rollout: drift and data quality per window, alerting
    after `windows_to_alert` bad windows in a row and recovering after `windows_to_recover`
    clean ones (docs/monitoring.md)."""

    enabled: bool = True
    interval_minutes: float = Field(
        default=60, ge=1, le=7 * 24 * 60, description="Length of one window, and how often."
    )
    windows_to_alert: int = Field(
        default=3, ge=1, le=1000, description="Bad windows in a row before an alert."
    )
    windows_to_recover: int = Field(
        default=3, ge=1, le=1000, description="Clean windows in a row before it resolves."
    )
    min_rows: int = Field(
        default=5000,
        ge=1,
        description="Rows a window needs before its drift is judged. Below it sampling noise "
        "alone nears the thresholds (at 1,000 rows a 50-category feature's Jensen-Shannon "
        "distance exceeds 0.1 in 1% of windows without any change); lengthen interval_minutes "
        "for a model with less traffic.",
    )
    prediction_column: str = Field(default="score", min_length=1, max_length=200)
    baseline_hours: float = Field(
        default=7 * 24,
        gt=0,
        le=90 * 24,
        description="Hours of production traffic, from the promotion, that later scores are "
        "compared with (the model's first week); prediction drift against it is judged once "
        "they have passed.",
    )
    drift: MonitoringDriftPolicy = MonitoringDriftPolicy()
    prediction_drift: MonitoringDriftPolicy = MonitoringDriftPolicy()
    quality: MonitoringQualityPolicy = MonitoringQualityPolicy()


class MergeMethod(StrEnum):
    MERGE = "merge"
    SQUASH = "squash"
    REBASE = "rebase"


class ReviewPolicy(_Strict):
    window_hours: float = Field(default=24, ge=0)
    approvers: list[str] = Field(default_factory=list, description="Logins or org/team slugs.")
    required_approvals: int = Field(default=1, ge=1)
    allow_author_approval: bool = False
    policy_approvers: list[str] = Field(
        default_factory=list,
        description="Logins or org/team slugs: when set, only they may approve a PR that "
        "changes `.shipyard.yml` (its author never may).",
    )
    merge_method: MergeMethod = MergeMethod.SQUASH


class SlackPolicy(_Strict):
    channel: str | None = Field(
        default=None, description="Channel id (C…) that gets one live message per promotion."
    )
    users: dict[str, str] = Field(
        default_factory=dict,
        description="Slack identity `TEAMID:USERID` -> GitHub login, reviewed like any policy "
        "change on the base branch.",
    )


class LimitsPolicy(_Strict):
    timeout_seconds: float = Field(default=600, gt=0)
    memory_mb: int = Field(default=4096, ge=256)


class Policy(_Strict):
    """Everything a registry decides about promotion, as code."""

    models_root: str = "models"
    benchmark: BenchmarkPolicy | None = None
    primary_metric: str = "roc_auc"
    metrics: list[TrackedMetric] = Field(
        default_factory=lambda: [TrackedMetric(name="roc_auc", margin=0.002, tolerance=0.005)]
    )
    segments: SegmentPolicy = SegmentPolicy()
    calibration: CalibrationPolicy = CalibrationPolicy()
    latency: LatencyPolicy = LatencyPolicy()
    statistics: StatisticsPolicy = StatisticsPolicy()
    trust: TrustPolicy = TrustPolicy()
    shadow: ShadowPolicy = ShadowPolicy()
    canary: CanaryPolicy = CanaryPolicy()
    monitoring: MonitoringPolicy = MonitoringPolicy()
    review: ReviewPolicy = ReviewPolicy()
    limits: LimitsPolicy = LimitsPolicy()
    slack: SlackPolicy = SlackPolicy()
    dry_run: bool = False

    @field_validator("primary_metric")
    @classmethod
    def _known_primary(cls, value: str) -> str:
        return _known_metric(value)

    def shadow_max_flip_rate(self) -> float:
        """The flip-rate limit shadow judges: its own, else the benchmark's threshold shift."""
        if self.shadow.max_flip_rate is not None:
            return self.shadow.max_flip_rate
        return self.calibration.max_threshold_shift

    @model_validator(mode="after")
    def _flip_rate_sizable(self) -> Policy:
        # Only a limit the author set for shadow is checked: one derived from the benchmark's
        # threshold shift (1.0 turns that check off) must not make a valid policy invalid.
        explicit = self.shadow.max_flip_rate is not None
        if explicit and self.shadow_max_flip_rate() + self.shadow.flip_rate_effect >= 1:
            raise ValueError(
                "shadow: the flip-rate limit plus flip_rate_effect must be below 1 "
                f"({self.shadow_max_flip_rate()} + {self.shadow.flip_rate_effect})"
            )
        return self

    def shadow_segment_columns(self) -> list[str]:
        """The segment columns whose every value needs shadow's per-segment minimum."""
        if self.shadow.segment_columns is not None:
            return list(self.shadow.segment_columns)
        return list(self.benchmark.segment_columns) if self.benchmark else []

    @field_validator("models_root")
    @classmethod
    def _relative_root(cls, value: str) -> str:
        value = value.strip("/")
        if not value or ".." in value.split("/"):
            raise ValueError("models_root must be a relative directory inside the repository")
        return value


class PolicyError(ValueError):
    """The policy file is not valid; the message names the lines at fault."""


def parse_policy(text: str | bytes | None, *, source: str = ".shipyard.yml") -> Policy:
    """Parse `.shipyard.yml` text; an absent file means the defaults.

    `source` is the name errors give the file (the CLI passes the path it was given).
    """
    if text is None:
        return Policy()
    raw = text.decode("utf-8") if isinstance(text, bytes) else text

    try:
        data, lines = load_yaml_with_lines(raw, source=source)
    except DocumentError as exc:
        raise PolicyError(str(exc)) from None
    if data is None:
        return Policy()
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the top level must be a mapping")
    try:
        return Policy.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError
        raise PolicyError(format_validation_error(exc, source, lines)) from exc


def policy_sha256(policy: Policy) -> str:
    """A stable hash of the effective policy (defaults included)."""
    canonical = policy.model_dump_json(exclude_none=False).encode()
    return hashlib.sha256(canonical).hexdigest()


def policy_json_schema() -> dict[str, object]:
    """The JSON Schema editors use to complete `.shipyard.yml`."""
    return Policy.model_json_schema()


__all__ = [
    "MonitoringDriftPolicy",
    "MonitoringPolicy",
    "MonitoringQualityPolicy",
    "Policy",
    "PolicyError",
    "parse_policy",
    "policy_json_schema",
    "policy_sha256",
]
