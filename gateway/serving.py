"""One gateway process's work, apart from HTTP: answer a request from production or the canary,
mirror it to the shadow, count it, log it."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from evaluators.artifacts.loading import import_loaders
from gateway import choice, names, shadow_batch
from gateway.config import GatewayConfig
from gateway.live import ActiveRoute, RoutingWatcher
from gateway.metrics import GatewayMetrics
from gateway.mirror import DROP_NOT_LOADED, Mirror, MirrorJob
from gateway.models import LoadedModel, ModelCache
from gateway.predlog import LogEntry, PredictionLog
from gateway.protocol import Context
from gateway.shadow_batch import ShadowBatch, ShadowJob
from gateway.shadow_process import ShadowProcess
from gateway.shadow_totals import ShadowTotals
from gateway.store import ArtifactStore

MODEL_FAILED = "model failed to answer"
SHADOW_INPUTS = "inputs do not match the shadow's features"
# In process mode the feeder sends what gathered in this long: one message (and one wake-up of
# the feeder, the worker and the result reader) per batch instead of per request. Per-batch
# costs dominate below ~50 requests a batch: 10 ms halved the worker's CPU per request at
# 2,000/s against 2 ms (docs/gateway.md, run G).
PROCESS_LINGER_S = 0.01

log = logging.getLogger("shipyard.gateway")


class ModelFailed(RuntimeError):
    """The answering model raised; the caller sees MODEL_FAILED only."""


@dataclass(frozen=True)
class Answer:
    variant: str
    version: str
    scores: NDArray[np.float64]


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        if config.behind_router and config.router_token is None:
            raise ValueError("a gateway behind a router needs the router's token")
        self.config = config
        self.store = ArtifactStore(config.store_url)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if config.cache_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-gateway-")
            cache_dir = Path(self._tmp.name)
        else:
            cache_dir = config.cache_dir
            cache_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = GatewayMetrics()
        self.watcher = RoutingWatcher(
            config.routing_path,
            ModelCache(self.store, cache_dir),
            every_s=config.reload_every_s,
            retry_s=config.retry_failed_s,
        )
        self.mirror = Mirror(
            metrics=self.metrics,
            handle=self._shadow,
            size=config.mirror_queue,
            workers=config.mirror_workers,
            linger_s=PROCESS_LINGER_S if config.mirror_mode == "process" else 0.0,
        )
        self.shadow_process: ShadowProcess | None = None
        if config.mirror_mode == "process" and not config.behind_router:
            self.shadow_process = ShadowProcess(
                store_url=config.store_url,
                cache_dir=cache_dir / "shadow-worker",
                answered=self._shadow_answered,
                drop=self.mirror.drop,
                log_dropped=lambda reason, rows: self.metrics.log_dropped.labels(reason).inc(rows),
                flush_rows=config.log_flush_rows,
                flush_every_s=config.log_flush_s,
                in_flight=config.mirror_queue,
                niceness=config.shadow_niceness,
            )
        self.log = PredictionLog(
            fs=self.store.fs,
            root=self.store.root,
            clock=config.clock,
            on_drop=lambda reason, rows: self.metrics.log_dropped.labels(reason).inc(rows),
            flush_rows=config.log_flush_rows,
            flush_every_s=config.log_flush_s,
        )
        self.started = False

    def start(self) -> None:
        import_loaders()  # before serving: a new version's format never stalls the answers
        self.watcher.start()
        if self.shadow_process is not None:
            self.shadow_process.start()
        self.mirror.start()
        self.log.start()
        self.started = True

    def stop(self) -> None:
        self.started = False
        self.watcher.stop()
        self.mirror.stop()  # its feeder threads hand what was queued to the worker process
        if self.shadow_process is not None:
            self.shadow_process.stop()
        self.log.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def render_metrics(self) -> bytes:
        """The /metrics text, with every loaded version's series present (at zero if unused)."""
        depth = self.mirror.depth_by_model()
        for model in set(depth) | set(self.watcher.table.routes):
            self.metrics.queue_depth.labels(model).set(depth.get(model, 0))
        for model, active in self.watcher.table.routes.items():
            for variant, loaded in (
                (names.VARIANT_PRODUCTION, active.production),
                (names.VARIANT_CANARY, active.canary),
                (names.VARIANT_SHADOW, active.shadow),
            ):
                if loaded is not None:
                    self.metrics.announce(model, variant, loaded.version)
        return self.metrics.render()

    def route(self, model: str) -> ActiveRoute | None:
        return self.watcher.table.routes.get(model)

    def answering(
        self, active: ActiveRoute, *, model: str, request_id: str, routed: str | None = None
    ) -> tuple[str, LoadedModel | None]:
        """The variant that answers and its model. Behind a router, `routed` (its
        `X-Shipyard-Variant`) names the slot; the model is None only for a shadow this process
        has not loaded (yet, or any more: routing moved on)."""
        if self.config.behind_router:
            variant = choice.routed_variant(routed)
            if variant == names.VARIANT_SHADOW:
                return variant, active.shadow
            if variant == names.VARIANT_CANARY and active.canary is None:
                variant = names.VARIANT_PRODUCTION  # the canary is still loading: as without one
        else:
            variant = choice.answering_variant(
                active.route,
                model=model,
                request_id=request_id,
                canary_ok=active.canary is not None,
            )
        loaded = active.canary if variant == names.VARIANT_CANARY else active.production
        assert loaded is not None  # callers check readiness first
        return variant, loaded

    def answer(
        self,
        model: str,
        variant: str,
        loaded: LoadedModel,
        *,
        request_id: str,
        x: NDArray[np.float32],
        active: ActiveRoute,
        context: Context | None = None,
    ) -> Answer:
        at = self.log.clock.now()  # the request's time, for its production and shadow rows
        scores, error, seconds = self._run(model, variant, loaded, x)
        mirror = not self.config.behind_router  # behind a router, the router mirrors
        if not mirror and variant == names.VARIANT_SHADOW:
            self.metrics.mirrored_to(model, loaded.version).inc()
        if mirror and choice.mirrored(active.route, model=model, request_id=request_id):
            shadow = active.shadow
            job = MirrorJob(
                model, request_id, shadow.sha256 if shadow else "", x, loaded.features, at, context
            )
            if shadow is None:
                self.mirror.drop(model, DROP_NOT_LOADED)
            elif self.mirror.offer(job):
                self.metrics.mirrored_to(model, shadow.version).inc()
        self._log(
            model,
            variant,
            loaded,
            request_id,
            at,
            x,
            loaded.features,
            scores,
            seconds,
            error,
            context,
        )
        if scores is None:
            raise ModelFailed(MODEL_FAILED)
        return Answer(variant, loaded.version, scores)

    def _run(
        self, model: str, variant: str, loaded: LoadedModel, x: NDArray[np.float32]
    ) -> tuple[NDArray[np.float64] | None, str | None, float]:
        started = time.perf_counter()
        try:
            scores: NDArray[np.float64] | None = loaded.scores(x)
        except Exception:
            scores = None
        seconds = time.perf_counter() - started
        self._count(model, variant, loaded.version, scores, seconds)
        return scores, (None if scores is not None else MODEL_FAILED), seconds

    def refused(self, model: str, variant: str, version: str) -> None:
        """A request the answering version could not read (its features differ from what the
        callers send) is that version's error: a canary that needs a feature nobody sends must
        show as failing, not as idle."""
        self.metrics.requests.labels(model, variant, version, names.OUTCOME_ERROR).inc()

    def _count(
        self,
        model: str,
        variant: str,
        version: str,
        scores: NDArray[np.float64] | None,
        seconds: float,
    ) -> None:
        series = self.metrics.series(model, variant, version)
        if scores is None:
            series.error.inc()
            return
        series.latency.observe(seconds)
        for value in scores.tolist():
            series.score.observe(value)
        series.ok.inc()

    def _shadow(self, jobs: list[MirrorJob]) -> None:
        """The mirror worker's batch: scored here (thread mode) or sent to the worker process,
        one batch per shadow bundle."""
        groups: dict[tuple[str, str], list[MirrorJob]] = {}
        for job in jobs:
            if self.config.before_shadow is not None:
                self.config.before_shadow(job)
            groups.setdefault((job.model, job.sha256), []).append(job)
        for (model, sha256), group in groups.items():
            try:
                ready = self._shadow_batch(model, sha256, group)
                if ready is None:
                    continue
                shadow, batch = ready
                if self.shadow_process is not None:
                    self.shadow_process.submit(batch)  # answered later by _shadow_answered
                else:
                    totals = shadow_batch.score(shadow, batch, self.log)
                    self._shadow_answered(model, shadow.version, totals)
            except Exception:  # one failing group must not lose the rest of the batch
                log.exception("mirror to %s failed", model)

    def _shadow_batch(
        self, model: str, sha256: str, jobs: list[MirrorJob]
    ) -> tuple[LoadedModel, ShadowBatch] | None:
        """The shadow and the jobs' rows in its feature order; None when none is left."""
        active = self.route(model)
        shadow = active.shadow if active is not None else None
        if shadow is None or shadow.sha256 != sha256:
            self.mirror.drop(model, DROP_NOT_LOADED, len(jobs))  # routing moved on meanwhile
            return None
        kept: list[ShadowJob] = []
        rows: list[NDArray[np.float32]] = []
        share = self.config.log_share
        for job in jobs:
            x = self._in_shadow_order(job, shadow)
            if x is None:
                continue
            logged = choice.sampled(share, model=model, request_id=job.request_id)
            kept.append(ShadowJob(len(x), job.request_id, job.at, logged, job.context))
            rows.append(x)
        if not kept:
            return None
        batch = ShadowBatch(model, shadow.version, shadow.sha256, kept, np.concatenate(rows))
        return shadow, batch

    def _in_shadow_order(self, job: MirrorJob, shadow: LoadedModel) -> NDArray[np.float32] | None:
        """The job's rows in the shadow's feature order; None (counted, logged) when the request
        lacks one of the shadow's features."""
        if shadow.features == job.features:
            return job.x
        index = {name: i for i, name in enumerate(job.features)}
        if all(name in index for name in shadow.features):
            return np.ascontiguousarray(job.x[:, [index[name] for name in shadow.features]])
        labels = (job.model, names.VARIANT_SHADOW, shadow.version, names.OUTCOME_ERROR)
        self.metrics.requests.labels(*labels).inc()
        self._log(
            job.model,
            names.VARIANT_SHADOW,
            shadow,
            job.request_id,
            job.at,
            job.x,
            job.features,
            None,
            0.0,
            SHADOW_INPUTS,
            job.context,
        )
        return None

    def _shadow_answered(self, model: str, version: str, totals: ShadowTotals) -> None:
        """A batch the shadow answered (the rows are logged already): counted as one request at
        a time would be, and the requests it could not load as dropped."""
        self.metrics.add_totals(model, names.VARIANT_SHADOW, version, totals)
        if totals.not_loaded:
            self.mirror.drop(model, DROP_NOT_LOADED, totals.not_loaded)

    def _log(
        self,
        model: str,
        variant: str,
        loaded: LoadedModel,
        request_id: str,
        at: datetime,
        x: NDArray[np.float32],
        features: list[str],
        scores: NDArray[np.float64] | None,
        seconds: float,
        error: str | None,
        context: Context | None = None,
    ) -> None:
        if not choice.sampled(self.config.log_share, model=model, request_id=request_id):
            return
        entry = LogEntry(
            request_id,
            loaded.version,
            at,
            features,
            x,
            scores,
            seconds * 1000.0,
            error,
            context,
        )
        self.log.add(model, variant, entry)
