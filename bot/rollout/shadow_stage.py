"""Pipeline step 3: a candidate that did not fail its evaluation receives mirrored production
traffic on the staging gateway, and is judged on it until it passes, fails or needs a person.

One scheduler deadline per head (`SHADOW_CHECK`, armed by the evaluation worker) drives every
model of that head. Each visit:
- an ended head (a newer push, a close, a merge) is torn down: the shadow slot leaves the
  routing table, the deployment becomes inactive, the stage stops counting;
- a stage not yet routed is started: the candidate's bundle is published to the artifact
  store (the production model too, if the gateway serves none yet), the row is written, then
  the route changes — so a crash in between is finished by the next visit, never lost;
- a routed stage is judged on the prediction log (paired by request id) and latency, by the
  pure `evaluators.judgement.shadow.decide_shadow`, and shown as the check run
  `Shipyard / shadow (<model>)`, a GitHub Deployment in `shadow/<model>`, and the gate.
The deadline comes back every `shadow_check_interval_s` while a stage collects evidence.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from bot.github.api import InstallationClient
from bot.github.events import PullRequestEvent
from bot.github.objects import PullRequest, Repository
from bot.github.registry_reader import materialise, read_model_dir, read_policy
from bot.promotion import audit
from bot.promotion.check_runs import CheckOutput, publish
from bot.promotion.deadlines import again_at, hurry_shadow_checks, rearm_if_due, settle
from bot.promotion.pr_refresh import get_pull, refresh_pr
from bot.promotion.promotion_state import latest_evaluations
from bot.rollout import deployments
from bot.rollout.metrics.factory import PrometheusConfig, make_metrics_source
from bot.rollout.metrics.prediction_log import read_prediction_log
from bot.rollout.metrics.source import MetricsError, Series, Window
from bot.rollout.metrics.source import NoData as NoMetrics
from bot.rollout.routers.factory import stage_router
from bot.rollout.routers.router import RouterError, Slot, TrafficRouter
from bot.runtime import outbox
from bot.runtime.context import BotContext
from bot.store.models import Deadline, EvaluationStatus, ShadowStage, ShadowStatus
from evaluators.artifacts.benchmark_data import load_benchmark
from evaluators.candidate import parse_model_config
from evaluators.judgement.shadow import ShadowDecision, decide_shadow
from evaluators.judgement.shadow import ShadowStatus as Judged
from evaluators.policy import Policy
from evaluators.report import Decision
from evaluators.statistics.drift import (
    MAX_PROFILE_BYTES,
    PROFILE_FILE,
    ReferenceProfile,
    reference_profile,
)
from evaluators.statistics.shadow_analysis import analyse_shadow
from evaluators.statistics.shadow_evidence import LatencyQuantiles, LatencyReading, NoData
from gateway import names
from gateway.routing import Deployed, ModelRoute, ShadowSlot
from gateway.store import MODELS_DIR, ArtifactStore, StoreError

log = logging.getLogger(__name__)

SHADOW_CHECK_PREFIX = "Shipyard / shadow"
_STATUS_OF: dict[Judged, ShadowStatus] = {
    Judged.PENDING: ShadowStatus.RUNNING,
    Judged.PASSED: ShadowStatus.PASSED,
    Judged.FAILED: ShadowStatus.FAILED,
    Judged.INCONCLUSIVE: ShadowStatus.INCONCLUSIVE,
}
_DEPLOYMENT_STATE: dict[str, deployments.State] = {
    ShadowStatus.RUNNING.value: "in_progress",
    ShadowStatus.PASSED.value: "success",
    ShadowStatus.FAILED.value: "failure",
    ShadowStatus.INCONCLUSIVE.value: "error",
    ShadowStatus.STOPPED.value: "inactive",
}
_CONCLUSION = {
    ShadowStatus.PASSED.value: "success",
    ShadowStatus.FAILED.value: "failure",
    ShadowStatus.INCONCLUSIVE.value: "action_required",  # a person decides; never neutral
    ShadowStatus.STOPPED.value: "cancelled",
}


def shadow_check_name(model: str) -> str:
    return f"{SHADOW_CHECK_PREFIX} ({model})"


def environment_of(model: str) -> str:
    return f"shadow/{model}"


def candidate_version(pr_number: int, head_sha: str) -> str:
    """The candidate's name on the gateway: unique per head, and a valid routing name."""
    return f"pr{pr_number}-{head_sha[:12]}"


@dataclass(frozen=True)
class _Staging:
    """The staging gateway's three ports, from settings."""

    store: ArtifactStore
    router: TrafficRouter
    prometheus_url: str | None


def _staging(ctx: BotContext) -> _Staging:
    settings = ctx.settings
    assert settings.shadow_artifact_store and settings.shadow_routing_table
    return _Staging(
        store=ArtifactStore(settings.shadow_artifact_store),
        router=stage_router(settings.shadow_routing_table, settings.shadow_nginx),
        prometheus_url=settings.shadow_prometheus_url,
    )


def on_pull_request(ctx: BotContext, event: PullRequestEvent) -> None:
    """A push, close or merge ends the older head's shadow: look at it at the next tick."""
    if event.action in ("synchronize", "closed"):
        with ctx.store.session() as session:
            hurry_shadow_checks(
                session,
                repository=event.repository.full_name,
                pr_number=event.pull_request.number,
                now=ctx.clock.now(),
            )


def advance(ctx: BotContext, deadline: Deadline) -> str:
    """One visit to a head's shadow stages; returns what the deadline records."""
    client = ctx.github.installation(deadline.installation_id)
    repo, number, head = deadline.repository, deadline.pr_number, deadline.head_sha
    pull = get_pull(client, repo, number)
    staging = _staging(ctx)
    if pull.state != "open" or pull.head.sha != head:
        stopped = _tear_down(ctx, staging, client, repo, number, head, pull)
        settle(ctx.store, deadline_id=deadline.id, result=f"stopped {stopped} shadow stage(s)")
        return "stopped"
    with ctx.store.session() as session:
        evaluations = latest_evaluations(session, repository=repo, pr_number=number, head_sha=head)
        wanted = {
            e.model: e.base_sha
            for e in evaluations.values()
            if e.status == EvaluationStatus.COMPLETED.value and e.decision != Decision.FAIL.value
        }
    policy: Policy | None = None
    running = 0
    for model, base_sha in sorted(wanted.items()):
        policy = read_policy(client, repo, base_sha)
        stage = _stage(ctx, deadline, model)
        if not stage.routed:
            _start(ctx, staging, client, pull, stage, base_sha, policy)
        else:
            _judge(ctx, staging, client, pull, stage, policy)
        running += _status(ctx, stage.id) == ShadowStatus.RUNNING.value
    refresh_pr(ctx, client=client, repo=repo, pull=pull, policy=policy)
    if running:
        due = ctx.clock.now() + timedelta(seconds=ctx.settings.shadow_check_interval_s)
        again_at(ctx.store, deadline_id=deadline.id, due_at=due)
        return "collecting"
    settle(ctx.store, deadline_id=deadline.id, result="judged")
    return "judged"


def _stage(ctx: BotContext, deadline: Deadline, model: str) -> ShadowStage:
    """The stage row for this model and head, written once (the UNIQUE key decides races)."""
    key = (
        ShadowStage.repository == deadline.repository,
        ShadowStage.pr_number == deadline.pr_number,
        ShadowStage.head_sha == deadline.head_sha,
        ShadowStage.model == model,
    )
    with ctx.store.session() as session:
        row = session.scalar(select(ShadowStage).where(*key))
        if row is None:
            row = ShadowStage(
                repository=deadline.repository,
                installation_id=deadline.installation_id,
                pr_number=deadline.pr_number,
                head_sha=deadline.head_sha,
                model=model,
                version=candidate_version(deadline.pr_number, deadline.head_sha),
                status=ShadowStatus.RUNNING.value,
                started_at=ctx.clock.now(),
                routed=False,
                title="starting",
            )
            session.add(row)
            session.flush()
        session.expunge(row)
        return row


def _status(ctx: BotContext, stage_id: int) -> str:
    with ctx.store.session() as session:
        row = session.get(ShadowStage, stage_id)
        return row.status if row else ShadowStatus.STOPPED.value


def _start(
    ctx: BotContext,
    staging: _Staging,
    client: InstallationClient,
    pull: PullRequest,
    stage: ShadowStage,
    base_sha: str,
    policy: Policy,
) -> None:
    repo = stage.repository
    directory = f"{policy.models_root}/{stage.model}"
    repository = Repository(full_name=stage.repository)
    holder = _slot_holder(ctx, staging, stage)
    if holder is not None:
        # One shadow per model at a time: this one waits for the slot, it does not take it.
        title = f"waiting: PR #{holder.pr_number}'s candidate holds the shadow slot"
        _record(ctx, stage, ShadowStatus.RUNNING, title, [])
        _show(ctx, client, stage, ShadowStatus.RUNNING, title, [])
        return
    try:
        with tempfile.TemporaryDirectory(prefix="shipyard-shadow-") as tmp:
            candidate = read_model_dir(client, repository, stage.head_sha, directory)
            candidate_dir = materialise(candidate, Path(tmp) / "candidate")
            sha = staging.store.publish(
                candidate_dir,
                model=stage.model,
                version=stage.version,
                classify=ctx.auditor.classify,
            )
            _keep_reference(ctx, staging, stage, policy, candidate_dir)
            route = staging.router.current(stage.model)
            production = route.production if route else None
            if production is None:
                # The gateway serves nothing for this model yet: production is the base's.
                baseline = read_model_dir(client, repository, base_sha, directory)
                version = f"base-{base_sha[:12]}"
                production = Deployed(
                    version=version,
                    sha256=staging.store.publish(
                        materialise(baseline, Path(tmp) / "baseline"),
                        model=stage.model,
                        version=version,
                        classify=ctx.auditor.classify,
                    ),
                )
        staging.router.apply(
            stage.model,
            ModelRoute(
                production=production,
                shadow=ShadowSlot(
                    version=stage.version, sha256=sha, mirror_share=policy.shadow.mirror_share
                ),
                canary=route.canary if route else None,
            ),
        )
    except (StoreError, RouterError) as exc:
        # The staging side refused: the stage cannot start; a person must decide (fail closed).
        # The exception goes to the log; the PR reads a fixed sentence.
        log.warning("shadow stage %s could not start: %s", stage.id, exc)
        why = [REFUSED_ROUTE if isinstance(exc, RouterError) else REFUSED_BUNDLE]
        _record(ctx, stage, ShadowStatus.INCONCLUSIVE, "could not start", why)
        _show(ctx, client, stage, ShadowStatus.INCONCLUSIVE, "could not start", why)
        return
    with ctx.store.session() as session:
        row = session.get(ShadowStage, stage.id)
        assert row is not None
        row.sha256 = sha
        row.production_version = production.version
        row.routed = True
        row.started_at = ctx.clock.now()  # evidence counts from the first mirrored request
        row.title = "started: receiving mirrored production traffic"
        audit.record(
            session,
            at=ctx.clock.now(),
            repository=repo,
            kind="shadow_started",
            pr_number=stage.pr_number,
            head_sha=stage.head_sha,
            reason=f"{stage.model} {stage.version} mirrors {production.version}",
        )
    _show(
        ctx,
        client,
        stage,
        ShadowStatus.RUNNING,
        "started: receiving mirrored production traffic",
        [
            f"Mirroring {policy.shadow.mirror_share:.0%} of {stage.model} "
            f"{production.version}'s traffic to {stage.version}."
        ],
    )


# The profile Shipyard builds from the benchmark is kept apart from an author's file: it is not
# bounded like one (a numeric feature takes ~21 KB; a 200-feature model passes 4 MB).
BUILT_PROFILE_FILE = "reference_profile.built.json"
REFUSED_BUNDLE = "The staging artifact store refused the candidate's bundle (see the bot's log)."
REFUSED_ROUTE = "The traffic router refused the shadow route (see the bot's log)."


def _keep_reference(
    ctx: BotContext, staging: _Staging, stage: ShadowStage, policy: Policy, candidate_dir: Path
) -> None:
    """Store once, beside the candidate's bundle, the reference drift is judged against: the
    profile the candidate ships, else a profile of the policy's pinned benchmark over the
    model's features (none without either: drift is then not measured, and the report says so).
    """
    target = staging.store.path(MODELS_DIR, stage.model, stage.version, PROFILE_FILE)
    built_target = staging.store.path(MODELS_DIR, stage.model, stage.version, BUILT_PROFILE_FILE)
    shipped = candidate_dir / PROFILE_FILE
    if shipped.is_file():
        staging.store.fs.put_file(str(shipped), target)  # validated when judged: the author's
        return
    if policy.benchmark is None:
        return
    features = parse_model_config((candidate_dir / "config.yaml").read_text("utf-8")).features
    benchmark = load_benchmark(
        policy=policy.benchmark,
        base_dir=ctx.settings.benchmark_dir,
        roots=ctx.settings.allowed_benchmark_roots(),
    ).frame
    drift = policy.shadow.drift
    profile = reference_profile(
        None,
        benchmark=benchmark,
        columns=features,
        bins=drift.bins,
        max_categories=drift.max_categories,
    )
    if profile is not None:
        with staging.store.fs.open(built_target, "w") as handle:
            handle.write(profile.model_dump_json())


def _judge(
    ctx: BotContext,
    staging: _Staging,
    client: InstallationClient,
    pull: PullRequest,
    stage: ShadowStage,
    policy: Policy,
) -> None:
    now = ctx.clock.now()
    production = read_prediction_log(
        staging.store, stage.model, names.VARIANT_PRODUCTION, since=stage.started_at
    )
    assert stage.production_version is not None
    production = production[production[names.LOG_VERSION] == stage.production_version]
    shadow = read_prediction_log(
        staging.store, stage.model, names.VARIANT_SHADOW, since=stage.started_at
    )
    shadow = shadow[shadow[names.LOG_VERSION] == stage.version]
    latency = _latency(staging, stage, production, shadow, now)
    try:
        profile = _profile(staging, stage)
    except ValueError:
        # The profile ships with the candidate: an invalid one is the author's to fix, and
        # drift must not go unmeasured because of it. A person decides (fail closed).
        title = f"needs a person: the candidate's {PROFILE_FILE} could not be read"
        lines = [
            f"{PROFILE_FILE} in the model directory is not a valid reference profile "
            "(see docs/shadow.md); input drift cannot be judged against it."
        ]
        _record(ctx, stage, ShadowStatus.INCONCLUSIVE, title, lines)
        _show(ctx, client, stage, ShadowStatus.INCONCLUSIVE, title, lines)
        _release_slot(staging, stage)
        return
    evidence = analyse_shadow(
        production=production,
        shadow=shadow,
        policy=policy,
        profile=profile,
        elapsed=now - stage.started_at,
        latency=latency,
    )
    decision = decide_shadow(policy=policy, evidence=evidence)
    status = _STATUS_OF[decision.status]
    title = _title(decision, evidence.paired, evidence.elapsed)
    # The gate quotes what was found; the check run shows everything.
    _record(ctx, stage, status, title, decision.findings or decision.lines[:1])
    _show(ctx, client, stage, status, title, decision.lines)
    if status is not ShadowStatus.RUNNING:
        _release_slot(staging, stage)  # the verdict is recorded; the next candidate may start
    if status is ShadowStatus.PASSED:
        # A review window that ended while shadow still ran is acted on at the next tick.
        with ctx.store.session() as session:
            rearm_if_due(
                session,
                repository=stage.repository,
                pr_number=stage.pr_number,
                head_sha=stage.head_sha,
            )


def _title(decision: ShadowDecision, paired: int, elapsed: timedelta) -> str:
    hours = elapsed.total_seconds() / 3600
    progress = f"{hours:.1f} h, {paired:,} of {decision.samples_needed:,} paired samples"
    found = decision.findings[0] if decision.findings else decision.lines[0]
    return {
        Judged.PENDING: f"collecting: {progress}",
        Judged.PASSED: f"passed: {progress}",
        Judged.FAILED: f"failed: {found}",
        Judged.INCONCLUSIVE: f"needs a person: {found}",
    }[decision.status]


def _latency(
    staging: _Staging,
    stage: ShadowStage,
    production: pd.DataFrame,
    shadow: pd.DataFrame,
    now: datetime,
) -> LatencyReading | NoData:
    """From Prometheus when configured (an empty answer is no data, never zero); otherwise
    from the latencies the gateways logged for the same requests."""
    if staging.prometheus_url:
        assert stage.production_version is not None
        source = make_metrics_source(
            PrometheusConfig.model_validate({"url": staging.prometheus_url})
        )
        window = Window(end=now, length=max(now - stage.started_at, timedelta(seconds=1)))
        try:
            quantiles = []
            for variant, version in (
                (names.VARIANT_SHADOW, stage.version),
                (names.VARIANT_PRODUCTION, stage.production_version),
            ):
                series = Series(model=stage.model, variant=variant, version=version)
                p50, p95, p99 = (
                    source.latency_quantile(series, window, q) * 1000 for q in (0.5, 0.95, 0.99)
                )
                quantiles.append(LatencyQuantiles(p50_ms=p50, p95_ms=p95, p99_ms=p99))
        except NoMetrics:  # an empty answer: no data, never zero
            return NoData(reason="Prometheus has no latency for this window")
        except MetricsError as exc:
            log.warning("shadow stage %s: latency unreadable: %s", stage.id, exc)
            return NoData(reason="Prometheus could not be read")
        return LatencyReading(shadow=quantiles[0], production=quantiles[1])
    readings = []
    for frame in (shadow, production):
        values = pd.to_numeric(frame[names.LOG_LATENCY_MS], errors="coerce").dropna()
        if values.empty:
            return NoData(reason="no latency logged yet")
        p50, p95, p99 = (float(values.quantile(q)) for q in (0.5, 0.95, 0.99))
        readings.append(LatencyQuantiles(p50_ms=p50, p95_ms=p95, p99_ms=p99))
    return LatencyReading(shadow=readings[0], production=readings[1])


def _profile(staging: _Staging, stage: ShadowStage) -> ReferenceProfile | None:
    """The reference kept at the stage's start (ValueError when it is not a valid profile)."""
    kept = staging.store.path(MODELS_DIR, stage.model, stage.version, PROFILE_FILE)
    if staging.store.fs.exists(kept):  # the author's: bounded like every file of a PR
        with staging.store.fs.open(kept, "rb") as handle:
            return ReferenceProfile.from_json(handle.read(MAX_PROFILE_BYTES + 1))
    built = staging.store.path(MODELS_DIR, stage.model, stage.version, BUILT_PROFILE_FILE)
    if staging.store.fs.exists(built):  # Shipyard's own, from the benchmark: any width
        with staging.store.fs.open(built, "rb") as handle:
            return ReferenceProfile.model_validate_json(handle.read())
    return None


def _record(
    ctx: BotContext, stage: ShadowStage, status: ShadowStatus, title: str, lines: list[str]
) -> None:
    with ctx.store.session() as session:
        row = session.get(ShadowStage, stage.id)
        assert row is not None
        changed = row.status != status.value
        row.status = status.value
        row.title = title[:500]
        row.lines = [line[:1000] for line in lines[:40]]
        row.judged_at = ctx.clock.now()
        if changed:
            audit.record(
                session,
                at=ctx.clock.now(),
                repository=stage.repository,
                kind=f"shadow_{status.value}",
                pr_number=stage.pr_number,
                head_sha=stage.head_sha,
                reason=f"{stage.model}: {title}"[:500],
            )


def _show(
    ctx: BotContext,
    client: InstallationClient,
    stage: ShadowStage,
    status: ShadowStatus,
    title: str,
    lines: list[str],
) -> None:
    """The check run and the deployment say the same thing; each is one outbox effect."""
    conclusion = _CONCLUSION.get(status.value)
    publish(
        client=client,
        store=ctx.store,
        now=ctx.clock.now(),
        repo=stage.repository,
        head_sha=stage.head_sha,
        name=shadow_check_name(stage.model),
        status="completed" if conclusion else "in_progress",
        conclusion=conclusion,
        output=CheckOutput(
            title=f"{stage.model}: shadow {title}"[:200],
            summary="\n".join(f"- {line}" for line in lines) or title,
        ),
        external_id=f"shadow:{stage.model}",
    )
    deployments.show(
        outbox.Local(store=ctx.store, client=client),
        installation_id=stage.installation_id,
        repo=stage.repository,
        sha=stage.head_sha,
        environment=environment_of(stage.model),
        state=_DEPLOYMENT_STATE[status.value],
        description=f"Shadow {title}",
        environment_url=ctx.settings.shadow_gateway_url or "",
    )


def _tear_down(
    ctx: BotContext,
    staging: _Staging,
    client: InstallationClient,
    repo: str,
    number: int,
    head: str,
    pull: PullRequest,
) -> int:
    """The head ended: remove its shadow slots, mark its deployments inactive."""
    with ctx.store.session() as session:
        stages = list(
            session.scalars(
                select(ShadowStage).where(
                    ShadowStage.repository == repo,
                    ShadowStage.pr_number == number,
                    ShadowStage.head_sha == head,
                    ShadowStage.status != ShadowStatus.STOPPED.value,
                )
            )
        )
        for row in stages:
            session.expunge(row)
    why = "merged" if pull.merged else "closed" if pull.state != "open" else "superseded"
    for stage in stages:
        _release_slot(staging, stage)
        _record(ctx, stage, ShadowStatus.STOPPED, f"stopped: the pull request was {why}", [])
        _show(ctx, client, stage, ShadowStatus.STOPPED, f"stopped ({why})", [])
    return len(stages)


def _release_slot(staging: _Staging, stage: ShadowStage) -> None:
    """Take this stage's candidate out of the shadow slot, if it is still the one there."""
    route = staging.router.current(stage.model)
    if route is not None and route.shadow is not None and route.shadow.version == stage.version:
        staging.router.remove_slot(stage.model, Slot.SHADOW)


def _slot_holder(ctx: BotContext, staging: _Staging, stage: ShadowStage) -> ShadowStage | None:
    """Another stage still collecting evidence in this model's shadow slot, if any."""
    route = staging.router.current(stage.model)
    if route is None or route.shadow is None or route.shadow.version == stage.version:
        return None
    with ctx.store.session() as session:
        holder = session.scalar(
            select(ShadowStage).where(
                ShadowStage.model == stage.model,
                ShadowStage.version == route.shadow.version,
                ShadowStage.status == ShadowStatus.RUNNING.value,
                ShadowStage.routed.is_(True),
            )
        )
        if holder is not None:
            session.expunge(holder)
        return holder
