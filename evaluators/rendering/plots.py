"""Report figures drawn with matplotlib's SVG canvas, returned as inline SVG data URIs.

SVG because it is cheaper to draw than a PNG of the same figure (no rasterising, no zlib) and
stays sharp at any zoom. Text is drawn as paths: the picture needs no font on the reader's
machine and carries no string from the data. The report's own figures are laid out by hand
(margins sized from their labels), which spares the extra draw that a "tight" bounding box
costs: about half of the drawing time. Ids are salted with a fixed string so the same report
gives the same bytes."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path
from matplotlib.ticker import FuncFormatter

from evaluators.report import (
    CalibrationSection,
    EvaluationReport,
    LatencySection,
    MetricComparison,
    Outcome,
    SegmentComparison,
)
from evaluators.wording import confidence_label, metric_label, truncate

MAX_FOREST_ROWS = 40
_COLOURS = {"candidate": "#1f77b4", "baseline": "#7f7f7f"}
_OUTCOME_COLOURS = {
    Outcome.REGRESSED: "#d62728",
    Outcome.IMPROVED: "#2ca02c",
    Outcome.UNCHANGED: "#7f7f7f",
    Outcome.TOO_SMALL: "#bbbbbb",
}


def _plain(text: str) -> str:
    # Matplotlib reads `$…$` as math; data must never be parsed (an odd `$` would raise).
    return text.replace("$", r"\$")


# Room around the axes, in inches: tick labels and axis label below, title above, y ticks left.
_BOTTOM_IN, _TOP_IN, _RIGHT_IN, _LEFT_IN = 0.6, 0.4, 0.25, 0.75


def _data_uri(figure: Figure, *, tight: bool = True) -> str:
    """The figure as an SVG data URI; `tight=False` for a figure that set its own margins."""
    FigureCanvasSVG(figure)
    buffer = io.BytesIO()
    with rc_context({"svg.fonttype": "path", "svg.hashsalt": "shipyard"}):
        figure.savefig(
            buffer, format="svg", bbox_inches="tight" if tight else None, metadata={"Date": None}
        )
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _text_width_in(labels: Sequence[str]) -> float:
    """The widest label at the default font size, in inches (glyph metrics, no drawing)."""
    font = FontProperties()
    widths = [text_to_path.get_text_width_height_descent(s, font, ismath=False)[0] for s in labels]
    return max(widths, default=0.0) / 72


def _margins(figure: Figure, *, left_in: float = _LEFT_IN) -> None:
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=left_in / width,
        right=1 - _RIGHT_IN / width,
        bottom=_BOTTOM_IN / height,
        top=1 - _TOP_IN / height,
    )


def reliability_plot(section: CalibrationSection) -> str:
    """Observed positive rate against mean predicted probability, per bin, both models."""
    figure = Figure(figsize=(5, 4.5))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="#999999", label="perfectly calibrated")
    for name, stats in (("candidate", section.candidate), ("baseline", section.baseline)):
        points = [b for b in stats.reliability if b.count > 0]
        axes.plot(
            [b.mean_predicted for b in points],
            [b.observed_rate for b in points],
            marker="o",
            color=_COLOURS[name],
            label="candidate" if name == "candidate" else "production",
        )
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="Mean predicted probability",
        ylabel="Observed positive rate",
        title="Reliability diagram",
    )
    axes.legend(loc="upper left")
    _margins(figure)
    return _data_uri(figure, tight=False)


def forest_plot(
    rows: Sequence[tuple[SegmentComparison, MetricComparison | None]], *, confidence: float | None
) -> str | None:
    """Per-segment deltas with their intervals as error bars (regressions first)."""
    judged: list[tuple[SegmentComparison, MetricComparison]] = [
        (s, m) for s, m in rows if m is not None and s.outcome is not Outcome.TOO_SMALL
    ]
    # Keep room for the clearest improvements even when many segments regressed.
    regressed = [row for row in judged if row[0].outcome is Outcome.REGRESSED]
    others = [row for row in judged if row[0].outcome is not Outcome.REGRESSED]
    kept = regressed[: MAX_FOREST_ROWS * 2 // 3]
    shown = kept + others[: MAX_FOREST_ROWS - len(kept)]
    if not shown:
        return None
    labels = [
        _plain(
            f"{truncate(s.column, max_length=20)}={truncate(s.value, max_length=30)}"
            f" ({metric_label(m.metric)})"
        )
        for s, m in shown
    ]
    label_in = _text_width_in(labels) + 0.15  # and the tick marks
    figure = Figure(figsize=(label_in + 5.0 + _RIGHT_IN, 1.2 + 0.28 * len(shown)))
    axes = figure.add_subplot()
    # One errorbar per outcome (colour), not per segment: a few artists to draw, not dozens.
    for outcome, colour in _OUTCOME_COLOURS.items():
        found = [(i, m) for i, (s, m) in enumerate(shown) if s.outcome is outcome]
        if not found:
            continue
        low = [m.delta - m.ci_low if math.isfinite(m.ci_low) else 0.0 for _, m in found]
        high = [m.ci_high - m.delta if math.isfinite(m.ci_high) else 0.0 for _, m in found]
        axes.errorbar(
            [m.delta for _, m in found],
            [i for i, _ in found],
            xerr=[[max(v, 0.0) for v in low], [max(v, 0.0) for v in high]],
            fmt="o",
            color=colour,
            capsize=3,
        )
    axes.axvline(0, color="#444444", linewidth=0.8)
    axes.set_yticks(range(len(shown)), labels)
    axes.invert_yaxis()
    axes.set_xlabel(f"Candidate − production, with {confidence_label(confidence)}")
    title = "Per-segment change"
    if len(shown) < len(judged):
        title += f" ({len(shown)} of {len(judged)} judged segments)"
    axes.set_title(title)
    _margins(figure, left_in=label_in)
    return _data_uri(figure, tight=False)


def _plain_tick(value: float, _position: int | None = None) -> str:
    return f"{value:g}"


def _plain_minor_tick(value: float, _position: int | None = None) -> str:
    """Label the 2s and 5s between decades, as a reader of a log axis expects."""
    if value <= 0:
        return ""
    leading = round(value / 10 ** math.floor(math.log10(value) + 1e-9))
    return f"{value:g}" if leading in (2, 5) else ""


def latency_plot(section: LatencySection) -> str | None:
    """Empirical CDF of single-request latency for both models."""
    samples = {
        "candidate": section.candidate.single_samples_ms,
        "production": section.baseline.single_samples_ms,
    }
    if not any(samples.values()):
        return None
    figure = Figure(figsize=(6, 3.5))
    axes = figure.add_subplot()
    everything: list[float] = []
    for (name, values), colour in zip(samples.items(), _COLOURS.values(), strict=True):
        ordered = np.sort(np.asarray(values, dtype=float))
        ordered = ordered[np.isfinite(ordered) & (ordered > 0)]
        if not ordered.size:
            continue
        everything += [float(ordered[0]), float(ordered[-1])]
        share = np.arange(1, ordered.size + 1) / ordered.size
        p99 = float(np.quantile(ordered, 0.99))
        axes.step(ordered, share, where="post", label=f"{name} (p99 {p99:.3g} ms)", color=colour)
        axes.axvline(p99, color=colour, linestyle=":", linewidth=1)
    if not everything:
        return None
    # Scaled to the data: a log axis when timings span a decade or more, so a long tail and the
    # bulk (often a fraction of a millisecond) are both readable.
    low, high = min(everything), max(everything)
    if high / low >= 10:
        axes.set_xscale("log")
        # Plain "0.2" labels: the default 10^x labels go through mathtext (half the time).
        axes.xaxis.set_major_formatter(FuncFormatter(_plain_tick))
        axes.xaxis.set_minor_formatter(FuncFormatter(_plain_minor_tick))
        axes.set_xlim(low / 1.2, high * 1.2)
    else:
        margin = (high - low) * 0.05 or low * 0.05
        axes.set_xlim(max(low - margin, 0.0), high + margin)
    axes.set(
        xlabel="Single-request latency (ms)",
        ylabel="Share of requests",
        title="Latency distribution (ECDF; dotted: p99)",
        ylim=(0, 1.02),
    )
    axes.legend(loc="lower right")
    _margins(figure)
    return _data_uri(figure, tight=False)


def comparison_plots(
    *,
    calibration: CalibrationSection | None,
    rows: Sequence[tuple[SegmentComparison, MetricComparison | None]],
    confidence: float | None,
) -> dict[str, str | None]:
    """The figures that need only the comparison (not latency), keyed by section."""
    return {
        "reliability": reliability_plot(calibration) if calibration else None,
        "segments": forest_plot(rows, confidence=confidence),
    }


def report_plots(
    report: EvaluationReport,
    *,
    rows: Sequence[tuple[SegmentComparison, MetricComparison | None]],
    drawn: Mapping[str, str | None],
) -> dict[str, str]:
    """All figures the HTML report shows, keyed by section; sections without data are absent.

    `drawn` holds figures drawn earlier from the same comparison; the rest are drawn here."""
    figures: dict[str, str | None] = dict(drawn)
    if "reliability" not in figures or "segments" not in figures:
        figures.update(
            comparison_plots(
                calibration=report.calibration,
                rows=rows,
                confidence=report.statistics.confidence if report.statistics else None,
            )
        )
    figures["latency"] = latency_plot(report.latency) if report.latency else None
    return {name: uri for name, uri in figures.items() if uri is not None}
