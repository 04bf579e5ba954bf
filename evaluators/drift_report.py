"""The per-check drift report: what one monitoring window showed, as a small typed document.

Built from what monitoring already measured and judged (`measure_window`, `judge_window`) plus
the window's frame, for the charts of the worst features in the reference profile's own bins.
Pure: no I/O. Stored per check as JSON, so it is bounded: names, texts, rows, bins and history
points are all cut to fixed limits (about 120 KB for 200 features and two weeks of history).
Feature names come from production traffic: they are made one plain line and cut here, and
escaped wherever they are rendered.
"""

from __future__ import annotations

import contextlib
import math
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from evaluators.judgement.monitoring import Severity, WindowJudgement
from evaluators.statistics.drift import CategoricalProfile, NumericProfile, ReferenceProfile
from evaluators.statistics.drift_tests import FeatureTests
from evaluators.statistics.monitoring_window import WindowMeasurements
from evaluators.wording import truncate

SeverityName = Literal["no_data", "ok", "warning", "critical"]
FloatArray = npt.NDArray[np.float64]

MAX_NAME = 64  # a feature, category or check name as shown
MAX_TEXT = 240  # one finding
MAX_FEATURE_FINDINGS = 3
MAX_TABLE_ROWS = 500  # beyond it the table keeps the worst and counts the rest
MAX_QUALITY_FINDINGS = 50
MAX_PREDICTION_ROWS = 10
MAX_ALERTS = 20
MAX_WORST = 24  # distributions drawn
MAX_BINS = 20  # numeric bins or named categories per distribution ("other" and missing extra)
MAX_HISTORY = 24 * 14  # two weeks of hourly windows
# The stored JSON's ceiling. 200 features with ASCII names and two weeks of history take about
# 160 KB; names in a script of 3-byte characters could pass it, so findings, then table rows,
# then old history points are left out until the report fits.
MAX_REPORT_BYTES = 190_000
# Six significant digits: enough for any reader, and a stored number stays short.
_DIGITS = 6

_SEVERITY_NAMES: dict[Severity, SeverityName] = {
    Severity.NO_DATA: "no_data",
    Severity.OK: "ok",
    Severity.WARNING: "warning",
    Severity.CRITICAL: "critical",
}
_RANK: dict[str, int] = {"no_data": -1, "ok": 0, "warning": 1, "critical": 2}


def shown_name(value: object, *, max_length: int = MAX_NAME) -> str:
    """A name from traffic as one plain line: whitespace collapsed, control and format
    characters (bidi overrides, zero-width marks) made a visible `�`, cut with `…`."""
    text = str(value)[: max_length * 4]  # never walk a 10 MB name
    text = "".join(
        "\ufffd" if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") and not c.isspace() else c
        for c in text
    )
    return truncate(text, max_length=max_length) or "(blank)"


def _num(value: float | None) -> float | None:
    """A finite number rounded to six significant digits; None for none, NaN or infinity
    (JSON has no infinity, and a stored report must read back the same)."""
    if value is None:
        return None
    number = float(value)
    return float(f"{number:.{_DIGITS}g}") if math.isfinite(number) else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PredictionPoint(_Model):
    """The model's score distribution in one window."""

    window_end: datetime
    rows: int = Field(ge=0)
    mean: float | None = None
    p05: float | None = None
    p25: float | None = None
    p50: float | None = None
    p75: float | None = None
    p95: float | None = None


def prediction_point(window_end: datetime, scores: npt.ArrayLike) -> PredictionPoint:
    """Mean and quantiles of one window's finite scores; `rows` counts every score, read or
    not. Scores that are not numbers count as missing."""
    try:
        values = np.asarray(scores, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        series = pd.to_numeric(pd.Series(np.asarray(scores, dtype=object).ravel()), errors="coerce")
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return PredictionPoint(window_end=window_end, rows=int(values.size))
    p05, p25, p50, p75, p95 = np.quantile(finite, [0.05, 0.25, 0.5, 0.75, 0.95])
    return PredictionPoint(
        window_end=window_end,
        rows=int(values.size),
        mean=_num(float(np.mean(finite))),
        p05=_num(p05),
        p25=_num(p25),
        p50=_num(p50),
        p75=_num(p75),
        p95=_num(p95),
    )


class FeatureRow(_Model):
    """One feature in the table. `outside_share` is numeric (outside the reference range),
    `unseen_share` categorical (not among the profile's categories)."""

    feature: str = Field(max_length=MAX_NAME)
    kind: Literal["numeric", "categorical"]
    severity: SeverityName
    psi: float | None = None
    js: float | None = None
    wasserstein: float | None = None
    ks: float | None = None
    ks_p_value: float | None = None
    missing_share: float | None = None
    outside_share: float | None = None
    unseen_share: float | None = None
    findings: list[str] = Field(default_factory=list, max_length=MAX_FEATURE_FINDINGS)


class PredictionRow(_Model):
    """The window's scores against one score reference ("the first week", "shadow")."""

    reference: str = Field(max_length=MAX_NAME)
    severity: SeverityName
    rows: int = Field(ge=0)
    psi: float | None = None
    wasserstein: float | None = None
    ks: float | None = None
    ks_p_value: float | None = None
    missing_share: float | None = None
    findings: list[str] = Field(default_factory=list, max_length=MAX_FEATURE_FINDINGS)


class QualityFinding(_Model):
    severity: SeverityName
    text: str = Field(max_length=MAX_TEXT)


class Distribution(_Model):
    """A feature in the reference profile's own cells: the numeric profile's quantile bins
    (or the categorical profile's categories, then "other"), then "missing"; the reference's
    shares and the window's in the same cells. `current` None: the window's values could not
    be read."""

    feature: str = Field(max_length=MAX_NAME)
    kind: Literal["numeric", "categorical"]
    severity: SeverityName
    labels: list[str] = Field(max_length=MAX_BINS + 2)
    reference: list[float] = Field(max_length=MAX_BINS + 2)
    current: list[float] | None = Field(default=None, max_length=MAX_BINS + 2)


class DriftReport(_Model):
    """One monitoring check of one model version, as shown to a reader."""

    repository: str = Field(max_length=200)
    model: str = Field(max_length=200)
    version: str = Field(max_length=200)
    window_start: datetime
    window_end: datetime
    rows: int = Field(ge=0)
    min_rows: int | None = None  # rows a window needs to be judged, when known
    severity: SeverityName
    alerts: dict[str, str] = Field(default_factory=dict, max_length=MAX_ALERTS)
    severity_counts: dict[SeverityName, int] = Field(default_factory=dict)
    features: list[FeatureRow] = Field(default_factory=list, max_length=MAX_TABLE_ROWS)
    features_hidden: int = Field(default=0, ge=0)  # rows left out of the table, least severe
    # Rows from this index on have their finding texts left out to fit MAX_REPORT_BYTES (their
    # numbers and severity stay); None: every row has its findings.
    findings_from: int | None = None
    predictions: list[PredictionRow] = Field(default_factory=list, max_length=MAX_PREDICTION_ROWS)
    quality: list[QualityFinding] = Field(default_factory=list, max_length=MAX_QUALITY_FINDINGS)
    quality_hidden: int = Field(default=0, ge=0)
    distributions: list[Distribution] = Field(default_factory=list, max_length=MAX_WORST)
    prediction: PredictionPoint | None = None  # this window's scores, when the frame had them
    history: list[PredictionPoint] = Field(default_factory=list, max_length=MAX_HISTORY)

    @property
    def judged(self) -> bool:
        return self.severity != "no_data"

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> DriftReport:
        return cls.model_validate_json(text)


def _findings(texts: Sequence[str]) -> list[str]:
    # Findings quote feature names: the same cleaning as the names themselves.
    return [shown_name(text, max_length=MAX_TEXT) for text in texts[:MAX_FEATURE_FINDINGS]]


def _feature_row(
    tests: FeatureTests, severity: SeverityName, findings: Sequence[str]
) -> FeatureRow:
    return FeatureRow(
        feature=shown_name(tests.feature),
        kind=tests.kind,
        severity=severity,
        psi=_num(tests.psi),
        js=_num(tests.js),
        wasserstein=_num(tests.wasserstein.value) if tests.wasserstein else None,
        ks=_num(tests.ks.value) if tests.ks else None,
        ks_p_value=_num(tests.ks_p_value),
        missing_share=_num(tests.missing_share),
        outside_share=_num(tests.outside_share),
        unseen_share=_num(tests.unseen_share),
        findings=_findings(findings),
    )


def _ranked_features(
    measurements: WindowMeasurements, judgement: WindowJudgement
) -> list[tuple[FeatureTests, FeatureRow]]:
    """Worst first, then by PSI (largest first), then by name. A window not judged shows no
    table: its numbers on too few rows are noise."""
    if judgement.severity is Severity.NO_DATA:
        return []
    judged = {f.feature: f for f in judgement.features}
    rows = []
    for tests in measurements.drift:
        found = judged.get(tests.feature)
        severity = _SEVERITY_NAMES[found.severity] if found else "no_data"
        texts = [f.text for f in found.findings] if found else []
        rows.append((tests, _feature_row(tests, severity, texts)))
    return sorted(
        rows,
        key=lambda pair: (
            -_RANK[pair[1].severity],
            -(pair[1].psi if pair[1].psi is not None else -1.0),
            pair[0].feature,
        ),
    )


def _prediction_rows(
    measurements: WindowMeasurements, judgement: WindowJudgement
) -> list[PredictionRow]:
    """One row per score reference; `judge_window` judged them in the same order."""
    if judgement.severity is Severity.NO_DATA:
        return []
    rows = []
    judged = list(judgement.predictions)
    for index, (reference, tests) in enumerate(
        list(measurements.predictions.items())[:MAX_PREDICTION_ROWS]
    ):
        found = judged[index] if index < len(judged) else None
        rows.append(
            PredictionRow(
                reference=shown_name(reference),
                severity=_SEVERITY_NAMES[found.severity] if found else "no_data",
                rows=tests.rows,
                psi=_num(tests.psi),
                wasserstein=_num(tests.wasserstein.value) if tests.wasserstein else None,
                ks=_num(tests.ks.value) if tests.ks else None,
                ks_p_value=_num(tests.ks_p_value),
                missing_share=_num(tests.missing_share),
                findings=_findings([f.text for f in found.findings] if found else []),
            )
        )
    return rows


def _column(sample: pd.DataFrame, feature: str) -> pd.Series[Any] | None:
    try:
        column = sample[feature] if feature in sample.columns else None
    except (TypeError, ValueError, KeyError):
        return None
    # A frame with two columns of the same name gives a frame: take the first.
    return column.iloc[:, 0] if isinstance(column, pd.DataFrame) else column


def _numeric_values(column: pd.Series[Any] | None, n: int) -> FloatArray | None:
    """The column as floats (absent: missing on every row, as drift reads it); None when its
    values cannot be read as numbers at all."""
    if column is None:
        return np.full(n, np.nan)
    try:
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            column = pd.to_numeric(column, errors="coerce")
        values: FloatArray = column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError, OverflowError):
        return None
    return values


def _edge(value: float) -> str:
    """Short bin edges for a chart's axis: `24.89`, `11,550`, `3.2e+09`."""
    if 1e4 <= abs(value) < 1e7:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _bin_label(low: float | None, high: float | None) -> str:
    if low is None:
        return "all values" if high is None else f"< {_edge(high)}"
    if high is None:
        return f"≥ {_edge(low)}"
    return f"{_edge(low)} – {_edge(high)}"


def _numeric_distribution(
    profile: NumericProfile, column: pd.Series[Any] | None, n: int
) -> tuple[list[str], list[float], list[float] | None]:
    """The profile's bins (bin j holds edges[j-1] <= v < edges[j]), then missing; infinite
    values are missing, as drift counts them."""
    edges = [float(e) for e in profile.edges]
    reference = [*profile.shares]
    current: list[float] | None = None
    values = _numeric_values(column, n)
    if values is not None:
        finite = values[np.isfinite(values)]
        counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
        current = [float(c) / n if n else 0.0 for c in counts]
    # More bins than a chart can show: neighbours merged, so every shown edge is the profile's.
    group = max(1, math.ceil(len(reference) / MAX_BINS))
    starts = range(0, len(reference), group)
    labels = [
        _bin_label(
            edges[start - 1] if start > 0 else None,
            edges[start + group - 1] if start + group - 1 < len(edges) else None,
        )
        for start in starts
    ]

    def grouped(shares: list[float]) -> list[float]:
        return [math.fsum(shares[start : start + group]) for start in starts]

    ref = [*grouped(reference), profile.missing_share]
    if current is None or values is None:
        return [*labels, "missing"], ref, None
    missing = float(np.count_nonzero(~np.isfinite(values))) / n if n else 0.0
    return [*labels, "missing"], ref, [*grouped(current), missing]


def _categorical_distribution(
    profile: CategoricalProfile, column: pd.Series[Any] | None, n: int
) -> tuple[list[str], list[float], list[float] | None]:
    kept = profile.categories[:MAX_BINS]
    folded = sum(profile.shares[MAX_BINS:])  # categories beyond the chart count as "other"
    reference = [*profile.shares[:MAX_BINS], profile.other_share + folded, profile.missing_share]
    labels = [*(shown_name(c, max_length=30) for c in kept), "other", "missing"]
    current: list[float] | None = None
    if column is None:
        current = [0.0] * (len(kept) + 1) + [1.0 if n else 0.0]
    elif n:
        try:
            missing = column.isna().to_numpy(dtype=bool)
            counts = column[~missing].astype(str).value_counts()
        except (TypeError, ValueError):
            counts, missing = None, None
        if counts is not None and missing is not None:
            named = [float(counts.get(c, 0)) / n for c in kept]
            share_missing = float(missing.sum()) / n
            current = [*named, max(1.0 - sum(named) - share_missing, 0.0), share_missing]
    else:
        current = [0.0] * (len(kept) + 2)
    return labels, reference, current


def distribution(
    feature: str,
    spec: NumericProfile | CategoricalProfile,
    sample: pd.DataFrame,
    *,
    severity: SeverityName,
) -> Distribution:
    """One feature of the window against the reference, in the reference's own cells."""
    column = _column(sample, feature)
    n = len(sample)
    if isinstance(spec, NumericProfile):
        labels, reference, current = _numeric_distribution(spec, column, n)
    else:
        labels, reference, current = _categorical_distribution(spec, column, n)
    return Distribution(
        feature=shown_name(feature),
        kind=spec.kind,
        severity=severity,
        labels=labels,
        reference=[_num(v) or 0.0 for v in reference],
        current=None if current is None else [_num(v) or 0.0 for v in current],
    )


def _history(
    history: Sequence[PredictionPoint], current: PredictionPoint | None
) -> list[PredictionPoint]:
    """Oldest first, this window last (replacing a stored point for the same window), capped
    to the latest MAX_HISTORY points."""
    points = [p for p in history if current is None or p.window_end != current.window_end]
    if current is not None:
        points.append(current)
    with contextlib.suppress(TypeError):  # naive and aware times mixed: the order given
        points.sort(key=lambda p: p.window_end)
    return points[-MAX_HISTORY:]


def _alerts(alerts: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, status in list(alerts.items())[:MAX_ALERTS]:
        found[shown_name(name)] = shown_name(status, max_length=20)
    return found


def build_drift_report(
    *,
    repository: str,
    model: str,
    version: str,
    window_start: datetime,
    window_end: datetime,
    profile: ReferenceProfile,
    sample: pd.DataFrame,
    measurements: WindowMeasurements,
    judgement: WindowJudgement,
    alerts: Mapping[str, str],
    history: Sequence[PredictionPoint],
    worst: int = 6,
    prediction_column: str | None = "score",
    min_rows: int | None = None,
) -> DriftReport:
    """The report of one window. `sample` is the frame given to `measure_window`; its
    `prediction_column` (the policy's, when present) gives this window's point of the score
    history. `history` is the past windows' points, oldest first. `min_rows` (the policy's)
    lets a window without enough rows say how many it needed."""
    ranked = _ranked_features(measurements, judgement)
    counts: dict[SeverityName, int] = {}
    for _, row in ranked:
        counts[row.severity] = counts.get(row.severity, 0) + 1
    distributions = []
    for tests, row in ranked[: max(0, min(worst, MAX_WORST))]:
        spec = profile.features.get(tests.feature)
        if spec is not None:
            distributions.append(distribution(tests.feature, spec, sample, severity=row.severity))
    quality = [
        QualityFinding(
            severity=_SEVERITY_NAMES[f.severity], text=shown_name(f.text, max_length=MAX_TEXT)
        )
        for f in judgement.quality
    ]
    current = None
    if prediction_column is not None:
        column = _column(sample, prediction_column)
        if column is not None:
            current = prediction_point(window_end, column.to_numpy())
    return _fit(
        DriftReport(
            repository=shown_name(repository, max_length=200),
            model=shown_name(model, max_length=200),
            version=shown_name(version, max_length=200),
            window_start=window_start,
            window_end=window_end,
            rows=measurements.quality.volume.rows,
            min_rows=min_rows,
            severity=_SEVERITY_NAMES[judgement.severity],
            alerts=_alerts(alerts),
            severity_counts=counts,
            features=[row for _, row in ranked[:MAX_TABLE_ROWS]],
            features_hidden=max(0, len(ranked) - MAX_TABLE_ROWS),
            predictions=_prediction_rows(measurements, judgement),
            quality=quality[:MAX_QUALITY_FINDINGS],
            quality_hidden=max(0, len(quality) - MAX_QUALITY_FINDINGS),
            distributions=distributions,
            prediction=current,
            history=_history(history, current),
        )
    )


def _size(report: DriftReport) -> int:
    return len(report.to_json().encode())


def _fit(report: DriftReport) -> DriftReport:
    """The report within MAX_REPORT_BYTES: findings of the least severe rows go first, then
    those rows themselves, then the oldest history points."""
    if _size(report) <= MAX_REPORT_BYTES:
        return report
    rows = report.features
    for keep in (100, 50, 20, 0):
        if keep >= len(rows):
            continue
        cut = [*rows[:keep], *(row.model_copy(update={"findings": []}) for row in rows[keep:])]
        report = report.model_copy(update={"features": cut, "findings_from": keep})
        if _size(report) <= MAX_REPORT_BYTES:
            return report
    for keep in (200, 100, 50, 20):
        shown = report.features
        if keep >= len(shown):
            continue
        hidden = report.features_hidden + len(shown) - keep
        report = report.model_copy(update={"features": shown[:keep], "features_hidden": hidden})
        if _size(report) <= MAX_REPORT_BYTES:
            return report
    for keep in (24 * 7, 24, 0):
        report = report.model_copy(update={"history": report.history[-keep:] if keep else []})
        if _size(report) <= MAX_REPORT_BYTES:
            return report
    return report


__all__ = [
    "MAX_HISTORY",
    "MAX_REPORT_BYTES",
    "Distribution",
    "DriftReport",
    "FeatureRow",
    "PredictionPoint",
    "PredictionRow",
    "QualityFinding",
    "build_drift_report",
    "distribution",
    "prediction_point",
    "shown_name",
]
