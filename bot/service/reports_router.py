"""`GET /reports/{id}`: the HTML report behind a check run's details link.

The link is a bearer link: its unguessable id is the only credential, so anyone who has the URL
can read the report. It therefore stops working `ttl` after the report was made (410).
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from bot.base.clock import Clock
from bot.store.db import Store
from bot.store.models import Report
from evaluators.rendering.render import render_html
from evaluators.report import EvaluationReport


@lru_cache(maxsize=64)
def _html(report_id: str, report_json: str) -> str:
    """Rendered when first asked for (plots cost time), then kept for repeat visits."""
    return render_html(EvaluationReport.model_validate_json(report_json))


EXPIRED = (
    "This report link has expired. Open the pull request's check run for a current link, "
    "or ask the bot for /retest."
)


# A report page runs no script and loads nothing; its bearer link is never indexed or leaked.
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
}


class _Expired(Exception):
    pass


def reports_router(store: Store, *, clock: Clock, ttl: timedelta) -> APIRouter:
    router = APIRouter()

    def _load(report_id: str) -> Report | None:
        if len(report_id) > 64:
            return None
        with store.session() as session:
            report = session.get(Report, report_id)
        if report is not None and clock.now() - report.created_at > ttl:
            raise _Expired
        return report

    async def _found(report_id: str) -> Report | Response:
        """The stored report, or the 410 a user sees for an expired link (404 when unknown)."""
        try:
            report = await run_in_threadpool(_load, report_id)
        except _Expired:
            return PlainTextResponse(EXPIRED, status_code=410, headers={"X-Robots-Tag": "noindex"})
        if report is None:
            raise HTTPException(status_code=404, detail="no such report")
        return report

    @router.get("/reports/{report_id}", response_class=HTMLResponse)
    async def show_report(report_id: str) -> Response:
        report = await _found(report_id)
        if isinstance(report, Response):
            return report
        html = await run_in_threadpool(_html, report.id, report.report_json)
        return HTMLResponse(html, headers=REPORT_HEADERS)

    @router.get("/reports/{report_id}/json")
    async def show_report_json(report_id: str) -> Response:
        report = await _found(report_id)
        if isinstance(report, Response):
            return report
        return Response(report.report_json, media_type="application/json")

    return router
