"""The report formats `shipyard evaluate --format` writes."""

from __future__ import annotations

from enum import StrEnum


class ReportFormat(StrEnum):
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"
