"""Liveness, readiness and metrics endpoints.

`/healthz` answers while the process serves HTTP. `/readyz` proves the bot can do its job
right now: it *writes* to the store (a read can succeed on a full disk or a read-only
replica) and, once it knows an installation, mints a GitHub token. `/metrics` is for
Prometheus. None of them say why in detail: reasons go to the log, not to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge
from sqlalchemy import select, update

from bot.base.observability import metrics_text
from bot.monitoring.metrics import monitoring_gauges
from bot.runtime.context import BotContext
from bot.runtime.inbox import depth
from bot.store.models import Delivery, ServiceHeartbeat

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
GITHUB_OK_FOR_S = 60.0  # a token minted recently proves enough; do not hit GitHub per probe


class _GitHubProbe:
    def __init__(self, ctx: BotContext) -> None:
        self._ctx = ctx
        self._ok_until = 0.0

    def check(self) -> None:
        """Raise unless GitHub accepts the App's key (and mints a token for an installation)."""
        if time.monotonic() < self._ok_until:
            return
        github = self._ctx.github
        with self._ctx.store.session() as session:
            installation = session.scalar(
                select(Delivery.installation_id)
                .where(Delivery.installation_id.is_not(None))
                .order_by(Delivery.id.desc())
                .limit(1)
            )
        if installation is not None:
            github.credentials.installation_token(int(installation))
        else:
            github.bot_login()  # no installation known yet: at least GitHub takes the key
        self._ok_until = time.monotonic() + GITHUB_OK_FOR_S


def health_router(ctx: BotContext) -> APIRouter:
    router = APIRouter()
    name = f"readyz:{socket.gethostname()[:60]}:{os.getpid()}"
    github = _GitHubProbe(ctx)

    def write_heartbeat() -> None:
        # An UPDATE statement, not an ORM merge: with an unchanged value the ORM would
        # write nothing, and the probe would prove nothing.
        with ctx.store.session() as session:
            now = ctx.clock.now()
            stmt = update(ServiceHeartbeat).where(ServiceHeartbeat.name == name).values(at=now)
            if session.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
                session.add(ServiceHeartbeat(name=name, at=now))

    async def probe(what: str, fn: object) -> bool:
        try:
            await asyncio.wait_for(run_in_threadpool(fn), PROBE_TIMEOUT_S)  # type: ignore[arg-type]
            return True
        except Exception as exc:
            log.warning("readiness: %s failed: %s", what, type(exc).__name__)
            return False

    @router.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        store_ok = await probe("store write", write_heartbeat)
        github_ok = await probe("GitHub token", github.check)
        ok = store_ok and github_ok
        return JSONResponse(
            {
                "status": "ready" if ok else "not ready",
                "store": "writable" if store_ok else "not writable",
                "github": "ok" if github_ok else "unreachable",
            },
            status_code=200 if ok else 503,
        )

    def store_gauges(registry: CollectorRegistry) -> None:
        count, age = depth(ctx.store, now=ctx.clock.now())
        Gauge(
            "shipyard_inbox_depth", "Deliveries waiting or being handled.", registry=registry
        ).set(count)
        Gauge(
            "shipyard_inbox_oldest_age_seconds",
            "Age of the oldest delivery waiting or being handled.",
            registry=registry,
        ).set(age)
        monitoring_gauges(ctx.store, registry)

    @router.get("/metrics")
    def metrics() -> Response:
        def no_store(_: CollectorRegistry) -> None:
            return None

        try:
            body = metrics_text(store_gauges)
        except Exception as exc:  # the store is down: still serve the process counters
            log.warning("metrics: inbox gauges unavailable: %s", type(exc).__name__)
            body = metrics_text(no_store)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
