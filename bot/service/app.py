"""The FastAPI application, built once by `create_app` from settings and injected parts."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from bot import __version__
from bot.base.capped_body import BodyBudget
from bot.base.clock import Clock, SystemClock
from bot.base.observability import install_record_context
from bot.base.settings import Settings
from bot.github.api import GitHubApp
from bot.promotion.evaluation_worker import evaluation_workers
from bot.runtime.context import BotContext
from bot.runtime.intake_writer import IntakeWriter
from bot.runtime.webhook_receiver import webhook_router
from bot.service.drift_router import drift_router
from bot.service.health import health_router
from bot.service.inbox_workers import inbox_workers
from bot.service.reports_router import reports_router
from bot.service.scheduler import DeadlineScheduler
from bot.store.db import open_store
from evaluators.artifacts.audit_process import shared_auditor

log = logging.getLogger(__name__)


def build_context(settings: Settings, *, clock: Clock | None = None) -> BotContext:
    """Connect the store (migrating it) and the GitHub App client."""
    clock = clock or SystemClock()
    store = open_store(settings.database_url)
    github = GitHubApp(
        app_id=settings.github_app_id,
        private_key=settings.private_key_pem(),
        api_url=settings.github_api_url,
        clock=clock,
        max_retries=settings.max_github_retries,
        max_wait_s=settings.max_retry_wait_s,
        timeout_s=settings.github_timeout_s,
    )
    return BotContext(
        settings=settings,
        store=store,
        github=github,
        clock=clock,
        auditor=shared_auditor(settings.artifact_audit_memory_mb),
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    run_workers: bool | None = None,
    intake: bool = True,
) -> FastAPI:
    """The bot: webhook endpoint, health, and inbox workers started with the app.

    `run_workers` (default: the `run_workers` setting) starts the inbox and evaluation workers
    and the scheduler. `intake=False` is `shipyard work`: the workers without the public routes
    (only /healthz, /readyz and /metrics), so handling runs in its own process, on its own
    core, beside intake-only `serve` processes on the same database.
    """
    if run_workers is None:
        run_workers = settings.run_workers
    install_record_context()
    ctx = build_context(settings, clock=clock)
    workers = inbox_workers(ctx, threads=settings.worker_threads)
    evaluations = evaluation_workers(ctx, threads=settings.evaluation_workers)
    ctx.wake_evaluations.subscribe(evaluations.wake)
    ctx.wake_inbox.subscribe(workers.wake)

    scheduler = DeadlineScheduler(ctx, interval_s=settings.scheduler_tick_s)
    intake_writer = IntakeWriter(ctx.store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # What exists at start-up (modules, the app, table metadata) lives as long as the
        # process: set apart from the collector, the full collections that deliveries'
        # parsed payloads trigger take milliseconds instead of pausing every request for 200.
        gc.collect()
        gc.freeze()
        if run_workers:
            # First thing they do: handle what was stored before a restart.
            workers.start()
            evaluations.start()
            scheduler.start()
        yield
        ctx.stopping.set()  # heartbeats stop: what is still running lapses to another replica
        if run_workers:
            scheduler.shutdown(settings.shutdown_grace_s)
        intake_writer.stop()
        workers.stop(settings.shutdown_grace_s)
        evaluations.stop(settings.shutdown_grace_s)
        ctx.store.engine.dispose()  # give connections back (replicas share one PostgreSQL)
        gc.unfreeze()  # another app in this process (tests) must not keep ours alive

    docs = settings.api_docs  # off by default: no map of the API for the internet
    app = FastAPI(
        title="Shipyard",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.ctx = ctx
    app.state.workers = workers
    app.state.evaluations = evaluations
    app.state.scheduler = scheduler
    app.state.body_budget = BodyBudget(settings.max_body_bytes_in_flight)
    if intake:
        app.include_router(
            webhook_router(
                writer=intake_writer,
                secrets=settings.webhook_secrets(),
                clock=ctx.clock,
                on_stored=workers.wake,
                budget=app.state.body_budget,
            )
        )
        ttl = timedelta(days=settings.report_link_ttl_days)
        app.include_router(reports_router(ctx.store, clock=ctx.clock, ttl=ttl))
        app.include_router(drift_router(ctx.store, clock=ctx.clock, ttl=ttl))
    if settings.slack_enabled:
        from bot.slack.setup import install_slack  # Slack is optional; only import when on

        install_slack(app, ctx, events=intake)

    app.include_router(health_router(ctx))
    return app
