"""How metrics, numbers and intervals are written for people (verdict reasons and reports)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from evaluators import escaping
from evaluators.report import MetricComparison

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "f1": "F1",
    "precision": "Precision",
    "recall": "Recall",
    "log_loss": "Log loss",
    "brier": "Brier score",
    "accuracy": "Accuracy",
    "macro_f1": "Macro F1",
    "ovr_roc_auc": "ROC AUC (one-vs-rest)",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
}


def metric_label(name: str) -> str:
    """The display name of a metric; unknown names are shown as given."""
    return METRIC_LABELS.get(name, name)


def _decimals(value: float) -> int:
    # Three decimals suit AUC-like deltas; tiny values keep two significant digits, not 0.000.
    magnitude = abs(value)
    if magnitude == 0 or magnitude >= 0.001:
        return 3
    return min(8, 1 - math.floor(math.log10(magnitude)))


def p_value(value: float | None) -> str:
    """A p-value as people read them: `0.032`, or `< 0.0001` rather than a row of zeros."""
    if value is None or math.isnan(value):
        return "—"
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}".rstrip("0").rstrip(".")


def milliseconds(value: float | None) -> str:
    """A duration in ms with the precision it deserves: `12.4`, `1.35`, `0.0213`."""
    if value is None or math.isnan(value):
        return "—"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def timestamp(value: datetime) -> str:
    """`25 Nov 2026, 09:00 UTC`: when something happened, as people read it."""
    utc = value.astimezone(UTC)
    return f"{utc.day} {utc:%b %Y, %H:%M} UTC"


def number(value: float | None, *, decimals: int | None = None) -> str:
    """A plain number: `0.861`; None or NaN as an em dash."""
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    places = _decimals(value) if decimals is None else decimals
    return f"{value:.{places}f}"


def signed(value: float | None, *, decimals: int | None = None) -> str:
    """A signed number: `+0.024`, `-0.041`."""
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "+∞" if value > 0 else "-∞"
    places = _decimals(value) if decimals is None else decimals
    return f"{value:+.{places}f}"


def percent(value: float | None, *, decimals: int = 1) -> str:
    """A share as a percentage: `12.5%`."""
    if value is None or math.isnan(value):
        return "—"
    return f"{value * 100:.{decimals}f}%"


def confidence_label(confidence: float | None) -> str:
    """`95% CI` for 0.95; `99.9% CI` for 0.999."""
    level = 0.95 if confidence is None else confidence
    text = f"{level * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}% CI"


def interval(low: float, high: float, *, confidence: float | None) -> str:
    """`95% CI +0.019 to +0.029`."""
    return f"{confidence_label(confidence)} {signed(low)} to {signed(high)}"


def delta_with_interval(comparison: MetricComparison, *, confidence: float | None) -> str:
    """`+0.024 (95% CI +0.019 to +0.029)`."""
    ci = interval(comparison.ci_low, comparison.ci_high, confidence=confidence)
    return f"{signed(comparison.delta)} ({ci})"


def movement(comparison: MetricComparison, *, confidence: float | None) -> str:
    """`fell by 0.011 (95% CI -0.015 to -0.007)`: the direction in words, the size unsigned.

    For a lower-is-better metric "improved by -0.011" reads as a contradiction; "fell by" does not.
    """
    verb = "fell" if comparison.delta < 0 else "rose"
    ci = interval(comparison.ci_low, comparison.ci_high, confidence=confidence)
    return f"{verb} by {number(abs(comparison.delta))} ({ci})"


def gain_interval(comparison: MetricComparison) -> tuple[float, float]:
    """The interval of the improvement, positive = better, whatever the metric's direction."""
    if comparison.higher_is_better:
        return comparison.ci_low, comparison.ci_high
    return -comparison.ci_high, -comparison.ci_low


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 segment`, `3 segments`, with thousands separators."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


def markdown_text(value: object, *, max_length: int | None = None) -> str:
    """Data-derived text made inert for GitHub Markdown (see `evaluators.escaping.markdown`)."""
    return escaping.markdown(value, max_length=max_length)


def truncate(value: object, *, max_length: int) -> str:
    """Plain text shortened with an ellipsis."""
    text = escaping.one_line(value)
    return text if len(text) <= max_length else text[: max_length - 1] + "…"
