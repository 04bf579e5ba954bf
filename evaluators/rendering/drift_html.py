"""Render a DriftReport as a self-contained HTML page: inline CSS, figures as SVG data URIs,
no script and nothing fetched (it is served under `default-src 'none'; img-src data:`).
Every name and text is escaped by the template's autoescape."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from evaluators.drift_report import DriftReport, shown_name
from report_templates import environment

MAX_LINKS = 10
MAX_URL = 2_000
_HTTP = re.compile(r"^https?://[^\s<>\"']+$", flags=re.IGNORECASE)

SEVERITY_TITLES = {
    "critical": "Critical",
    "warning": "Warning",
    "ok": "OK",
    "no_data": "Not enough data",
}


def _links(links: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """Only http(s) addresses, without spaces or quotes; labels made plain and short."""
    found = []
    for label, url in list((links or {}).items())[:MAX_LINKS]:
        if isinstance(url, str) and len(url) <= MAX_URL and _HTTP.match(url):
            found.append((shown_name(label, max_length=40), url))
    return found


def _css_class(status: str) -> str:
    # Alert statuses are free text from the caller: only known ones become a class name.
    return status if status in SEVERITY_TITLES else "unknown"


def render_drift_html(report: DriftReport, *, links: Mapping[str, str] | None = None) -> str:
    """The drift report of one monitoring check as one HTML page."""
    # Imported here so building a report (or rendering anything else) need not load matplotlib.
    from evaluators.rendering import drift_plots

    charts = [
        (found, drift_plots.distribution_plot(found))
        for found in (report.distributions if report.judged else [])
    ]
    context: dict[str, Any] = {
        "report": report,
        "titles": SEVERITY_TITLES,
        "css": _css_class,
        "links": _links(links),
        "charts": charts,
        "history_chart": drift_plots.prediction_history_plot(report.history),
        "counts": [
            (name, report.severity_counts[name])
            for name in ("critical", "warning", "ok", "no_data")
            if report.severity_counts.get(name)
        ],
    }
    return environment().get_template("drift_report.html.j2").render(**context)


__all__ = ["SEVERITY_TITLES", "render_drift_html"]
