"""Drift report figures (inline SVG data URIs, as plots.py): a feature
in the reference's own cells, reference against this window; and the model's score
distribution over time."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from evaluators.drift_report import Distribution, PredictionPoint
from evaluators.rendering.plots import _data_uri, _plain
from evaluators.wording import truncate

_REFERENCE = "#7f7f7f"
_SEVERITY_COLOURS = {
    "critical": "#d62728",
    "warning": "#d4a72c",
    "ok": "#1f77b4",
    "no_data": "#1f77b4",
}
_BAND = "#1f77b4"


def _label(text: str, *, max_length: int) -> str:
    # Names come from traffic: cut again for the narrow room of an axis, and never mathtext.
    return _plain(truncate(text, max_length=max_length))


def _draw(figure: Figure) -> str:
    # A name in a script the font lacks draws as boxes; matplotlib's warning about it is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Gg]lyph.*missing")
        return _data_uri(figure)


def distribution_plot(found: Distribution) -> str:
    """Grouped bars: the reference's share of each cell, and this window's."""
    cells = len(found.labels)
    figure = Figure(figsize=(max(4.0, 1.2 + 0.38 * cells), 3.0))
    axes = figure.add_subplot()
    x = np.arange(cells)
    width = 0.4
    axes.bar(x - width / 2, found.reference, width, color=_REFERENCE, label="reference")
    if found.current is not None:
        axes.bar(
            x + width / 2,
            found.current,
            width,
            color=_SEVERITY_COLOURS.get(found.severity, _BAND),
            label="this window",
        )
    axes.set_xticks(
        x, [_label(label, max_length=18) for label in found.labels], rotation=45, ha="right"
    )
    axes.set_ylabel("Share of rows")
    axes.set_ylim(0, max([*found.reference, *(found.current or []), 0.01]) * 1.15)
    axes.set_title(_label(f"{found.feature} ({found.severity.replace('_', ' ')})", max_length=50))
    # Beside the axes, never over the bars.
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _draw(figure)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _series(points: Sequence[PredictionPoint], name: str) -> np.ndarray:
    values = [getattr(p, name) for p in points]
    return np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)


def prediction_history_plot(points: Sequence[PredictionPoint]) -> str | None:
    """The score distribution per window over time: the p05–p95 and p25–p75 bands and the
    median; None when no window had a score."""
    shown = [p for p in points if p.p50 is not None]
    if not shown:
        return None
    # As datetime64 (UTC): matplotlib's date axis reads them, and numpy gets no aware datetimes.
    times = np.array([_naive_utc(p.window_end) for p in shown], dtype="datetime64[s]")
    figure = Figure(figsize=(7, 3.2))
    axes = figure.add_subplot()
    p05, p25, p50, p75, p95 = (_series(shown, n) for n in ("p05", "p25", "p50", "p75", "p95"))
    axes.fill_between(times, p05, p95, color=_BAND, alpha=0.18, linewidth=0, label="p05–p95")
    axes.fill_between(times, p25, p75, color=_BAND, alpha=0.35, linewidth=0, label="p25–p75")
    axes.plot(times, p50, color=_BAND, marker="o" if len(shown) < 30 else None, label="median")
    # The latest window (this check) marked, so the reader sees where "now" is.
    axes.plot(times[-1:], p50[-1:], marker="o", color="#d62728", linestyle="none")
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib leaves it untyped
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.set_ylabel("Score")
    axes.set_title("Score distribution per window (red: this window)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _draw(figure)


__all__ = ["distribution_plot", "prediction_history_plot"]
