"""Render an EvaluationReport as the PR comment, the check run text, HTML and JSON."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from evaluators.report import (
    CalibrationSection,
    Decision,
    EvaluationReport,
    MetricComparison,
    Outcome,
    RunStatus,
    SegmentComparison,
)
from evaluators.wording import (
    confidence_label,
    gain_interval,
    markdown_text,
    metric_label,
    number,
    plural,
    signed,
    truncate,
)
from report_templates import environment

GITHUB_COMMENT_LIMIT = 65_536
CHECK_SUMMARY_LIMIT = 65_535
CHECK_TITLE_LIMIT = 99
# Headroom under GitHub's limits: it may count some characters (emoji, CJK) as more than one.
_BUDGET = 60_000
MAX_REASONS = 25
MAX_REASON_CHARS = 500
MAX_AUDIT_LINES = 50

_BLANK_LINES = re.compile(r"\n{3,}")

REPORT_MARKER_PREFIX = "<!-- shipyard:report"

DECISION_TITLES = {
    Decision.AUTO_PROMOTE_ELIGIBLE: "Eligible for auto-promotion",
    Decision.NEEDS_REVIEW: "Needs review",
    Decision.FAIL: "Fails the promotion gate",
}
DECISION_ICONS = {
    Decision.AUTO_PROMOTE_ELIGIBLE: "✅",
    Decision.NEEDS_REVIEW: "👀",
    Decision.FAIL: "❌",
}
OUTCOME_LABELS = {
    Outcome.REGRESSED: "🔴 regressed",
    Outcome.IMPROVED: "🟢 improved",
    Outcome.UNCHANGED: "⚪ unchanged",
    Outcome.TOO_SMALL: "too small",
}
# HTML marks outcomes with a CSS-drawn dot: no dependence on an emoji font.
HTML_OUTCOME_LABELS = {
    Outcome.REGRESSED: "regressed",
    Outcome.IMPROVED: "improved",
    Outcome.UNCHANGED: "unchanged",
    Outcome.TOO_SMALL: "too small",
}
_OUTCOME_ORDER = {Outcome.REGRESSED: 0, Outcome.IMPROVED: 1, Outcome.UNCHANGED: 2}

# (rows in the main segment table, rows in the collapsed full tables): tried in order until the
# text fits, so small reports show everything and huge ones keep regressions and top improvements.
_DETAIL_LEVELS: tuple[tuple[int, int | None], ...] = (
    (25, None),
    (25, 1000),
    (25, 600),
    (25, 400),
    (25, 150),
    (25, 50),
    (25, 0),
    (10, 0),
    (0, 0),
)


def report_marker(model: str) -> str:
    """The hidden first line that lets the bot find its one comment for this model."""
    # Only a safe alphabet: a model name must not be able to close the HTML comment.
    safe = re.sub(r"[^A-Za-z0-9._/-]", "_", model)
    return f"{REPORT_MARKER_PREFIX} model={safe} -->"


@dataclass(frozen=True)
class SegmentRow:
    """A segment with the one comparison shown for it in the main table."""

    segment: SegmentComparison
    shown: MetricComparison | None


def primary_comparison(report: EvaluationReport) -> MetricComparison | None:
    """The primary metric's overall comparison (the first one if the primary is missing)."""
    for comparison in report.overall:
        if comparison.metric == report.primary_metric:
            return comparison
    return report.overall[0] if report.overall else None


def _shown_metric(segment: SegmentComparison, primary: str) -> MetricComparison | None:
    if segment.outcome is Outcome.REGRESSED:
        regressed = [m for m in segment.metrics if m.outcome is Outcome.REGRESSED]
        if regressed:
            return regressed[0]
    for metric in segment.metrics:
        if metric.metric == primary:
            return metric
    return segment.metrics[0] if segment.metrics else None


def _finite_or(value: float, fallback: float) -> float:
    return value if math.isfinite(value) else fallback


def ordered_segments(report: EvaluationReport) -> list[SegmentRow]:
    """Regressions (worst first), then improvements (clearest first), then the rest."""
    return order_segments(report.segments, primary_metric=report.primary_metric)


def order_segments(
    segments: Sequence[SegmentComparison], *, primary_metric: str
) -> list[SegmentRow]:
    """`ordered_segments` for segments not yet in a report (the comparison alone)."""

    def key(row: SegmentRow) -> tuple[int, float]:
        rank = _OUTCOME_ORDER.get(row.segment.outcome, 3)
        if row.shown is None:
            return rank, math.inf
        low, high = gain_interval(row.shown)
        if row.segment.outcome is Outcome.REGRESSED:
            return rank, _finite_or(high, math.inf)
        if row.segment.outcome is Outcome.IMPROVED:
            return rank, -_finite_or(low, -math.inf)
        return rank, -row.segment.rows

    rows = [SegmentRow(s, _shown_metric(s, primary_metric)) for s in segments]
    return sorted(rows, key=key)


def outcome_counts(report: EvaluationReport) -> dict[Outcome, int]:
    counts = dict.fromkeys(Outcome, 0)
    for segment in report.segments:
        counts[segment.outcome] += 1
    return counts


def _confidence(report: EvaluationReport) -> float | None:
    return report.statistics.confidence if report.statistics else None


def headline(report: EvaluationReport, *, markdown: bool) -> str:
    """`churn scores ROC AUC 0.861 (+0.024, 95% CI +0.019 to +0.029) overall; …`."""
    name = f"**{markdown_text(report.model)}**" if markdown else report.model
    if report.status is not RunStatus.COMPLETED:
        what = "timed out" if report.status is RunStatus.TIMED_OUT else "stopped with an error"
        return f"{name}: the evaluation {what}."
    primary = primary_comparison(report)
    if primary is None:
        return f"{name}: no metric was measured."
    ci = confidence_label(_confidence(report))
    text = (
        f"{name} scores {metric_label(primary.metric)} {number(primary.candidate)} "
        f"({signed(primary.delta)}, {ci} {signed(primary.ci_low)} to {signed(primary.ci_high)})"
        " overall"
    )
    if not report.segments:
        return text + "."
    counts = outcome_counts(report)
    parts = [
        f"{plural(counts[Outcome.IMPROVED], 'segment')} improved",
        f"{counts[Outcome.REGRESSED]:,} regressed",
    ]
    if counts[Outcome.UNCHANGED]:
        parts.append(f"{counts[Outcome.UNCHANGED]:,} unchanged")
    if counts[Outcome.TOO_SMALL]:
        parts.append(f"{counts[Outcome.TOO_SMALL]:,} too small to judge")
    return f"{text}; {', '.join(parts)}."


@dataclass(frozen=True)
class DetailTable:
    """All segments of one segment column, with every metric."""

    column: str
    metrics: list[str]
    segments: list[SegmentComparison]


def _detail_tables(rows: Sequence[SegmentRow], limit: int | None) -> tuple[list[DetailTable], int]:
    chosen = list(rows) if limit is None else list(rows[:limit])
    tables: dict[str, DetailTable] = {}
    for row in chosen:
        segment = row.segment
        table = tables.setdefault(segment.column, DetailTable(segment.column, [], []))
        table.segments.append(segment)
        for metric in segment.metrics:
            if metric.metric not in table.metrics:
                table.metrics.append(metric.metric)
    return list(tables.values()), len(rows) - len(chosen)


@dataclass(frozen=True)
class ReliabilityChart:
    """Mermaid xychart data: one category per bin both models have rows in."""

    labels: list[str]
    candidate: list[str]
    baseline: list[str]
    diagonal: list[str]


def reliability_chart(section: CalibrationSection) -> ReliabilityChart | None:
    pairs = zip(section.candidate.reliability, section.baseline.reliability, strict=False)
    chart = ReliabilityChart([], [], [], [])
    for cand, base in pairs:
        values = (cand.observed_rate, base.observed_rate)
        # Mermaid lines cannot have gaps, so bins without rows on either side are left out.
        if cand.count == 0 or base.count == 0 or not all(math.isfinite(v) for v in values):
            continue
        chart.labels.append(f'"{cand.lower:.2f}–{cand.upper:.2f}"')
        chart.candidate.append(f"{cand.observed_rate:.3f}")
        chart.baseline.append(f"{base.observed_rate:.3f}")
        chart.diagonal.append(f"{(cand.lower + cand.upper) / 2:.3f}")
    return chart if len(chart.labels) >= 2 else None


def _reasons(report: EvaluationReport) -> list[str]:
    if report.verdict is None:
        return []
    reasons = [truncate(reason, max_length=MAX_REASON_CHARS) for reason in report.verdict.reasons]
    if len(reasons) <= MAX_REASONS:
        return reasons
    return [*reasons[:MAX_REASONS], f"… and {len(reasons) - MAX_REASONS:,} more reasons."]


def _context(
    report: EvaluationReport,
    *,
    main_limit: int,
    detail_limit: int | None,
    html_url: str | None,
    audit: Sequence[str],
    in_pull_request: bool = True,
) -> dict[str, Any]:
    rows = ordered_segments(report)
    # The collapsed tables hold only what the main table leaves out: no segment is listed twice.
    rest = rows[main_limit:]
    details, details_hidden = _detail_tables(rest, detail_limit)
    decision = report.verdict.decision if report.verdict else None
    return {
        "report": report,
        "completed": report.status is RunStatus.COMPLETED,
        "marker": report_marker(report.model),
        "headline": headline(report, markdown=True),
        "ci": confidence_label(_confidence(report)),
        "decision_title": DECISION_TITLES[decision] if decision else "No verdict recorded",
        "decision_icon": DECISION_ICONS[decision] if decision else "❔",
        "reasons": _reasons(report),
        "main_rows": rows[:main_limit],
        "main_hidden": max(0, len(rows) - main_limit),
        "details": details,
        "details_hidden": details_hidden,
        "segment_total": len(rows),
        "details_total": len(rest),
        "outcome_labels": OUTCOME_LABELS,
        "chart": reliability_chart(report.calibration) if report.calibration else None,
        "html_url": html_url,
        "audit": list(audit)[-MAX_AUDIT_LINES:],
        "audit_hidden": max(0, len(audit) - MAX_AUDIT_LINES),
        "in_pull_request": in_pull_request,
    }


def _safe_url(url: str | None) -> str | None:
    """Only http(s) links, with characters that would end a Markdown link percent-encoded."""
    if not url or not re.match(r"^https?://", url, flags=re.IGNORECASE):
        return None
    return quote(url, safe=":/?#@!$&'*+,;=%~.-_")


def _fit(
    template: str,
    report: EvaluationReport,
    *,
    html_url: str | None,
    audit: Sequence[str],
    limit: int,
    in_pull_request: bool = True,
) -> str:
    render = environment().get_template(template).render
    segments = len(report.segments)
    text = ""
    html_url = _safe_url(html_url)
    tried: set[tuple[int, int]] = set()
    for main_limit, detail_limit in _DETAIL_LEVELS:
        effective = (
            min(main_limit, segments),
            segments if detail_limit is None else min(detail_limit, segments),
        )
        if effective in tried:
            continue
        tried.add(effective)
        text = _BLANK_LINES.sub(
            "\n\n",
            render(
                **_context(
                    report,
                    main_limit=main_limit,
                    detail_limit=detail_limit,
                    html_url=html_url,
                    audit=audit,
                    in_pull_request=in_pull_request,
                )
            ),
        )
        if len(text) <= limit:
            return text
    # Only reachable with absurd free text (errors, notes); cut rather than be rejected.
    notice = "\n\n… (truncated to fit GitHub's size limit)\n"
    return text[: limit - len(notice)] + notice


def render_pr_comment(
    report: EvaluationReport,
    *,
    html_url: str | None = None,
    audit: list[str] | None = None,
    max_chars: int = _BUDGET,
    in_pull_request: bool = True,
) -> str:
    """Markdown for the one report comment, starting with the hidden marker; always fits.

    `max_chars` lets a caller that puts several models in one comment share the limit;
    `in_pull_request=False` (the CLI) leaves out advice such as commenting `/retest`.
    """
    return _fit(
        "pr_comment.md.j2",
        report,
        html_url=html_url,
        audit=audit or [],
        limit=max_chars,
        in_pull_request=in_pull_request,
    )


def render_check_summary(
    report: EvaluationReport, *, html_url: str | None = None, max_chars: int = _BUDGET
) -> str:
    """Markdown for the evaluation check run's output.summary; always under 65,535 chars."""
    return _fit("check_summary.md.j2", report, html_url=html_url, audit=[], limit=max_chars)


def render_check_title(report: EvaluationReport) -> str:
    """A short check run title, e.g. `Needs review: ROC AUC +0.024 (95% CI …); 1 regressed`."""
    if report.status is RunStatus.TIMED_OUT:
        return "Evaluation timed out"
    if report.status is RunStatus.ERROR:
        return "Evaluation failed with an error"
    decision = report.verdict.decision if report.verdict else None
    title = DECISION_TITLES[decision] if decision else "Evaluated"
    primary = primary_comparison(report)
    if primary is not None:
        ci = confidence_label(_confidence(report))
        title += (
            f": {metric_label(primary.metric)} {signed(primary.delta)} "
            f"({ci} {signed(primary.ci_low)} to {signed(primary.ci_high)})"
        )
    regressed = outcome_counts(report)[Outcome.REGRESSED]
    if regressed:
        title += f"; {plural(regressed, 'segment')} regressed"
    return truncate(title, max_length=CHECK_TITLE_LIMIT)


def render_html(
    report: EvaluationReport,
    *,
    in_pull_request: bool = True,
    drawn: Mapping[str, str | None] | None = None,
) -> str:
    """A self-contained HTML report (inline CSS, plots as inline SVG) that opens offline.

    `drawn`: figures already drawn from this report's comparison (`comparison_plots`)."""
    # Imported here so rendering a comment does not pay for importing matplotlib.
    from evaluators.rendering import plots

    context: dict[str, Any] = {
        "report": report,
        "completed": report.status is RunStatus.COMPLETED,
        "headline": headline(report, markdown=False),
        "ci": confidence_label(_confidence(report)),
        "decision": report.verdict.decision if report.verdict else None,
        "decision_titles": DECISION_TITLES,
        "outcome_labels": HTML_OUTCOME_LABELS,
        "details": [],
        "plots": {},
        "in_pull_request": in_pull_request,
    }
    if report.status is RunStatus.COMPLETED:
        rows = ordered_segments(report)
        context["details"] = _detail_tables(rows, None)[0]
        context["plots"] = plots.report_plots(
            report, rows=[(row.segment, row.shown) for row in rows], drawn=drawn or {}
        )
    return environment().get_template("report.html.j2").render(**context)


def render_json(report: EvaluationReport) -> str:
    """The report as JSON (the same document `EvaluationReport.model_validate_json` reads)."""
    return report.model_dump_json(indent=2)
