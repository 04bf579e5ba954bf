"""The monitoring decision: one window's findings → a severity per feature and overall, and the
alert state machine over windows (docs/monitoring.md).

Rules:
- drift is judged by effect size only (PSI and Wasserstein for numbers, PSI and Jensen-Shannon
  for categories); a KS p-value is shown beside it, never judged, so volume alone never alarms;
- a window with fewer than `min_rows` rows is not judged (NO_DATA): too noisy to call clean
  or drifted;
- data quality: a missing column or a numeric column turned to text is critical (the model
  cannot score it as trained); more missing values, out-of-range values, unseen categories and
  traffic volume away from its usual level warn;
- alerts: WARNING after `windows_to_alert` windows in a row at warning or worse, CRITICAL after
  as many in a row at critical; once raised, an alert may escalate but only resolves after
  `windows_to_recover` clean windows in a row. A window without data is neither bad nor clean:
  it breaks a clean run and leaves a bad run where it was, so an outage can neither raise nor
  resolve an alert.
Pure: same policy and findings, same decision. Lines are plain text; feature names come from
traffic and are cut here, escaped where rendered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from evaluators.policy import MonitoringDriftPolicy, MonitoringPolicy
from evaluators.statistics.data_quality import DataQuality
from evaluators.statistics.drift_tests import FeatureTests
from evaluators.wording import number, percent, truncate


class Severity(IntEnum):
    """Worse is larger, so the overall severity is the max."""

    NO_DATA = -1
    OK = 0
    WARNING = 1
    CRITICAL = 2


@dataclass(frozen=True)
class Finding:
    severity: Severity
    text: str


@dataclass(frozen=True)
class FeatureSeverity:
    feature: str
    severity: Severity
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class WindowJudgement:
    severity: Severity
    features: tuple[FeatureSeverity, ...]  # worst first
    predictions: tuple[FeatureSeverity, ...]  # one per score reference, in the given order
    quality: tuple[Finding, ...]  # worst first

    def lines(self) -> list[str]:
        found = [f for feature in self.features for f in feature.findings]
        found += [f for prediction in self.predictions for f in prediction.findings]
        found += self.quality
        return [f.text for f in sorted(found, key=lambda f: -f.severity)]


def _level(value: float | None, warn: float, critical: float) -> Severity:
    if value is None:
        return Severity.OK
    if value >= critical:
        return Severity.CRITICAL
    return Severity.WARNING if value >= warn else Severity.OK


def judge_feature(
    tests: FeatureTests, limits: MonitoringDriftPolicy, *, label: str | None = None
) -> FeatureSeverity:
    """A feature's severity: the worst of its effect sizes against their thresholds."""
    subject = label or f"Drift in {truncate(tests.feature, max_length=60)}"
    wasserstein = tests.wasserstein.value if tests.wasserstein is not None else None
    measured = [
        ("PSI", tests.psi, limits.psi_warn, limits.psi_critical),
        ("Jensen-Shannon", tests.js, limits.js_warn, limits.js_critical),
        ("Wasserstein (σ)", wasserstein, limits.wasserstein_warn, limits.wasserstein_critical),
    ]
    findings = []
    for statistic, value, warn, critical in measured:
        severity = _level(value, warn, critical)
        if severity > Severity.OK and value is not None:
            limit = critical if severity is Severity.CRITICAL else warn
            evidence = ""
            if tests.ks_p_value is not None and tests.ks is not None:
                evidence = f" (KS {number(tests.ks.value, decimals=3)}, p {tests.ks_p_value:.1e})"
            findings.append(
                Finding(
                    severity,
                    f"{subject}: {statistic} {number(value, decimals=3)} at or above "
                    f"{number(limit, decimals=2)}{evidence}.",
                )
            )
    worst = max((f.severity for f in findings), default=Severity.OK)
    return FeatureSeverity(tests.feature, worst, tuple(findings))


def _volume_finding(policy: MonitoringPolicy, quality: DataQuality) -> Finding | None:
    volume, limits = quality.volume, policy.quality
    if volume.ratio is None or volume.usual is None:
        return None
    if limits.volume_low <= volume.ratio <= limits.volume_high:
        return None
    return Finding(
        Severity.WARNING,
        f"Traffic: {volume.rows:,} rows, {number(volume.ratio, decimals=2)}× the usual "
        f"{volume.usual:,.0f}.",
    )


def judge_quality(policy: MonitoringPolicy, quality: DataQuality) -> list[Finding]:
    limits = policy.quality
    found = []
    schema = quality.schema
    if schema.missing_count:
        listed = ", ".join(truncate(c, max_length=60) for c in schema.missing[:10])
        found.append(
            Finding(Severity.CRITICAL, f"{schema.missing_count:,} features missing: {listed}.")
        )
    for change in schema.retyped[:10]:
        found.append(
            Finding(
                Severity.CRITICAL,
                f"{truncate(change.column, max_length=60)} was {change.expected}, now "
                f"{truncate(change.found, max_length=40)}.",
            )
        )
    if schema.added_count:
        listed = ", ".join(truncate(c, max_length=60) for c in schema.added[:10])
        found.append(Finding(Severity.WARNING, f"{schema.added_count:,} new columns: {listed}."))
    for column in quality.columns:
        name = truncate(column.feature, max_length=60)
        if column.missing_increase > limits.max_missing_increase:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"{name}: {percent(column.missing_share, decimals=1)} missing (reference "
                    f"{percent(column.reference_missing_share, decimals=1)}).",
                )
            )
        if column.out_of_range is not None and column.out_of_range > limits.max_out_of_range:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"{name}: {percent(column.out_of_range, decimals=1)} outside the "
                    "reference range.",
                )
            )
        if column.unseen is not None and column.unseen > limits.max_unseen:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"{name}: {percent(column.unseen, decimals=1)} in categories the "
                    "reference has not seen.",
                )
            )
    volume = _volume_finding(policy, quality)
    if volume is not None:
        found.append(volume)
    return sorted(found, key=lambda f: -f.severity)


def judge_window(
    policy: MonitoringPolicy,
    *,
    drift: Sequence[FeatureTests],
    quality: DataQuality,
    predictions: Mapping[str, FeatureTests] | None = None,
) -> WindowJudgement:
    """One window's severity: the worst of its features, its prediction drift (keyed by the
    reference the scores were compared with: "the first week", "shadow") and its data quality;
    NO_DATA when the window has fewer than `min_rows` rows (volume is still judged)."""
    quality_findings = judge_quality(policy, quality)
    if quality.volume.rows < policy.min_rows:
        volume = _volume_finding(policy, quality)
        return WindowJudgement(Severity.NO_DATA, (), (), (volume,) if volume else ())
    features = sorted(
        (judge_feature(tests, policy.drift) for tests in drift),
        key=lambda f: (-f.severity, f.feature),
    )
    judged_predictions = tuple(
        judge_feature(
            tests,
            policy.prediction_drift,
            label=f"Prediction drift against {truncate(against, max_length=40)}",
        )
        for against, tests in (predictions or {}).items()
    )
    severities = [f.severity for f in features] + [f.severity for f in quality_findings]
    severities += [p.severity for p in judged_predictions]
    return WindowJudgement(
        severity=max(severities, default=Severity.OK),
        features=tuple(features),
        predictions=judged_predictions,
        quality=tuple(quality_findings),
    )


class Check(StrEnum):
    """What alerts separately: each has its own state machine, incident and issue."""

    FEATURE_DRIFT = "feature_drift"
    PREDICTION_DRIFT = "prediction_drift"
    DATA_QUALITY = "data_quality"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


def check_severities(judgement: WindowJudgement) -> dict[Check, Severity]:
    """Each check's severity in one window. A window too small to judge drift is NO_DATA for
    the drift checks; data quality still sees its volume, so a traffic collapse alerts."""
    quality = max((f.severity for f in judgement.quality), default=Severity.OK)
    if judgement.severity is Severity.NO_DATA:
        return {
            Check.FEATURE_DRIFT: Severity.NO_DATA,
            Check.PREDICTION_DRIFT: Severity.NO_DATA,
            Check.DATA_QUALITY: quality if judgement.quality else Severity.NO_DATA,
        }
    predictions = [p.severity for p in judgement.predictions]
    return {
        # Without a reference (no training profile; the first week not over), nothing is known.
        Check.FEATURE_DRIFT: max(
            (f.severity for f in judgement.features), default=Severity.NO_DATA
        ),
        Check.PREDICTION_DRIFT: max(predictions) if predictions else Severity.NO_DATA,
        Check.DATA_QUALITY: quality,
    }


def check_lines(judgement: WindowJudgement, check: Check) -> list[str]:
    """The findings of one check, worst first."""
    if check is Check.FEATURE_DRIFT:
        found = [f for feature in judgement.features for f in feature.findings]
    elif check is Check.PREDICTION_DRIFT:
        found = [f for prediction in judgement.predictions for f in prediction.findings]
    else:
        found = list(judgement.quality)
    return [f.text for f in sorted(found, key=lambda f: -f.severity)]


class AlertStatus(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertEvent(StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertState:
    """What the scheduler stores between windows: the alert, and the current runs."""

    status: AlertStatus = AlertStatus.OK
    bad_run: int = 0  # windows in a row at warning or worse
    critical_run: int = 0  # windows in a row at critical
    clean_run: int = 0  # windows in a row at OK


@dataclass(frozen=True)
class Transition:
    state: AlertState
    event: AlertEvent | None  # what to tell people about, if anything


_RANK = {AlertStatus.OK: 0, AlertStatus.WARNING: 1, AlertStatus.CRITICAL: 2}


def next_state(previous: AlertState, severity: Severity, policy: MonitoringPolicy) -> Transition:
    """The alert after one more window of the given severity."""
    if severity is Severity.NO_DATA:
        state = AlertState(previous.status, previous.bad_run, previous.critical_run, 0)
        return Transition(state, None)
    bad = previous.bad_run + 1 if severity >= Severity.WARNING else 0
    critical = previous.critical_run + 1 if severity >= Severity.CRITICAL else 0
    clean = previous.clean_run + 1 if severity is Severity.OK else 0
    k = policy.windows_to_alert
    earned = (
        AlertStatus.CRITICAL
        if critical >= k
        else AlertStatus.WARNING
        if bad >= k
        else AlertStatus.OK
    )
    status, event = previous.status, None
    if _RANK[earned] > _RANK[status]:
        event = AlertEvent.RAISED if status is AlertStatus.OK else AlertEvent.ESCALATED
        status = earned
    elif status is not AlertStatus.OK and clean >= policy.windows_to_recover:
        status, event = AlertStatus.OK, AlertEvent.RESOLVED
    return Transition(AlertState(status, bad, critical, clean), event)


__all__ = [
    "AlertEvent",
    "AlertState",
    "AlertStatus",
    "Check",
    "FeatureSeverity",
    "Finding",
    "Severity",
    "Transition",
    "WindowJudgement",
    "check_lines",
    "check_severities",
    "judge_feature",
    "judge_quality",
    "judge_window",
    "next_state",
]
