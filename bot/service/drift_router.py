"""`GET /drift/{id}`: a monitoring window's HTML drift report, linked from the GitHub issue,
the Slack message and the page. A bearer link like `/reports/{id}`: the unguessable id is the
credential, and it stops working `ttl` after the window was judged (410)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from bot.base.clock import Clock
from bot.service.reports_router import REPORT_HEADERS
from bot.store.db import Store
from bot.store.models import DriftCheck
from evaluators.drift_report import DriftReport
from evaluators.rendering.drift_html import render_drift_html

EXPIRED = (
    "This drift report link has expired. `shipyard monitor <model>` and the monitoring issue "
    "link the newest window's report."
)


@lru_cache(maxsize=32)
def _html(report_id: str, report_json: str) -> str:
    return render_drift_html(DriftReport.model_validate_json(report_json))


def drift_router(store: Store, *, clock: Clock, ttl: timedelta) -> APIRouter:
    router = APIRouter()

    def _load(report_id: str) -> DriftCheck | str | None:
        if len(report_id) > 64:
            return None
        with store.session() as session:
            found = session.get(DriftCheck, report_id)
        if found is not None and clock.now() - found.created_at > ttl:
            return EXPIRED
        return found

    async def _found(report_id: str) -> DriftCheck | Response:
        found = await run_in_threadpool(_load, report_id)
        if isinstance(found, str):
            return PlainTextResponse(found, status_code=410, headers={"X-Robots-Tag": "noindex"})
        if found is None:
            raise HTTPException(status_code=404, detail="no such drift report")
        return found

    @router.get("/drift/{report_id}", response_class=HTMLResponse)
    async def show_drift(report_id: str) -> Response:
        found = await _found(report_id)
        if isinstance(found, Response):
            return found
        html = await run_in_threadpool(_html, found.id, found.report_json)
        return HTMLResponse(html, headers=REPORT_HEADERS)

    @router.get("/drift/{report_id}/json")
    async def show_drift_json(report_id: str) -> Response:
        found = await _found(report_id)
        if isinstance(found, Response):
            return found
        return Response(found.report_json, media_type="application/json")

    return router
