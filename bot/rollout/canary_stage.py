"""Pipeline step 5: after merge, the merged model takes a growing share of production traffic
on the production gateway, is compared with production in the same window at every analysis,
and is promoted, or rolled back with on-call paged.

One scheduler deadline per merged head (`CANARY_CHECK`, armed when the merge is seen) drives
every model of that head. Each visit, per model:
- a request a person left (/rollback, /pause, /resume, /promote, /ack) is carried out first;
- the row is the intent and the router follows it: the wanted route is applied (a no-op when in
  effect), so a crash between the row and the route is finished, never doubled;
- a running rollout due for analysis asks Prometheus (`canary_readings`) and the pure
  `evaluators.judgement.canary.decide_canary` what to do: hold, advance a step, promote,
  roll back, or pause for a person;
- the row's state is shown: the check run `Shipyard / canary (<model>)` on the PR's head, the
  GitHub Deployment of the merge commit in `production/<model>`, the report comment and Slack;
  a rollback also opens a revert PR and pages on-call. Each is one outbox effect, keyed on the
  rollout, so retries, crashes and replicas never double one.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.github.api import InstallationClient
from bot.github.events import PullRequestEvent
from bot.github.objects import PullRequest, Repository
from bot.github.registry_reader import materialise, read_model_dir, read_policy
from bot.promotion import audit
from bot.promotion.deadlines import again_at, arm_once, settle
from bot.promotion.pr_refresh import get_pull, refresh_pr
from bot.promotion.promotion_state import CANARY_CHECK, MONITOR_CHECK, latest_evaluations
from bot.rollout import canary_outcome, canary_readings
from bot.rollout.canary_requests import CanaryAction
from bot.rollout.canary_route import Intent, wanted_route
from bot.rollout.metrics.factory import PrometheusConfig, make_metrics_source
from bot.rollout.metrics.prediction_log import (
    PredictionLogSource,
    read_prediction_log,
    score_counts,
)
from bot.rollout.metrics.source import MetricsSource
from bot.rollout.routers.factory import stage_router
from bot.rollout.routers.router import TrafficRouter
from bot.rollout.shadow_stage import candidate_version
from bot.runtime.context import BotContext
from bot.store.models import (
    CanaryRollout,
    CanaryStatus,
    Deadline,
    EvaluationStatus,
    ShadowStage,
)
from evaluators.judgement.canary import CanaryMove, decide_canary, render_table
from evaluators.policy import Policy
from evaluators.report import Decision
from evaluators.statistics.canary_evidence import CanaryProgress
from gateway import names
from gateway.routing import Deployed
from gateway.store import ArtifactStore, StoreError

log = logging.getLogger(__name__)

ACTIVE = (CanaryStatus.RUNNING.value, CanaryStatus.PAUSED.value)


def on_pull_request(ctx: BotContext, event: PullRequestEvent) -> None:
    """A merge starts the rollout of the models evaluated at the merged head."""
    pull = event.pull_request
    if event.action != "closed" or not pull.merged or not ctx.settings.canary_enabled:
        return
    with ctx.store.session() as session:
        arm_once(
            session,
            kind=CANARY_CHECK,
            repository=event.repository.full_name,
            installation_id=event.installation.id if event.installation else 0,
            pr_number=pull.number,
            head_sha=pull.head.sha,
            due_at=ctx.clock.now(),
        )


def _ports(ctx: BotContext) -> tuple[ArtifactStore, TrafficRouter, MetricsSource]:
    """The production gateway's store and router, and where its metrics are read: Prometheus
    when configured, else the prediction log the gateways write to the same store."""
    settings = ctx.settings
    assert settings.canary_artifact_store and settings.canary_routing_table
    store = ArtifactStore(settings.canary_artifact_store)
    source: MetricsSource = (
        make_metrics_source(
            PrometheusConfig.model_validate({"url": settings.canary_prometheus_url})
        )
        if settings.canary_prometheus_url
        else PredictionLogSource(store)
    )
    return store, stage_router(settings.canary_routing_table, settings.canary_nginx), source


def advance(ctx: BotContext, deadline: Deadline) -> str:
    """One visit to a merged head's rollouts; returns what the deadline records."""
    client = ctx.github.installation(deadline.installation_id)
    repo, number = deadline.repository, deadline.pr_number
    pull = get_pull(client, repo, number)
    if not pull.merged or not pull.merge_commit_sha:
        settle(ctx.store, deadline_id=deadline.id, result="not merged")
        return "not merged"
    with ctx.store.session() as session:
        evaluations = latest_evaluations(
            session, repository=repo, pr_number=number, head_sha=deadline.head_sha
        )
        wanted = {
            e.model: e.base_sha
            for e in evaluations.values()
            if e.status == EvaluationStatus.COMPLETED.value and e.decision != Decision.FAIL.value
        }
        measuring = any(
            e.status in (EvaluationStatus.QUEUED.value, EvaluationStatus.IN_PROGRESS.value)
            for e in evaluations.values()
        )
    if measuring:
        # Merged while its evidence was being measured again: roll out once it is in.
        due = ctx.clock.now() + timedelta(seconds=ctx.settings.canary_check_interval_s)
        again_at(ctx.store, deadline_id=deadline.id, due_at=due)
        return "waiting for the evaluation"
    # The policy the gate judged the PR by (the base's), never one the PR itself brought: a
    # merged .shipyard.yml change governs the next rollouts, not its own.
    policy = read_policy(client, repo, min(wanted.values())) if wanted else None
    if policy is None or not policy.canary.enabled:
        settle(ctx.store, deadline_id=deadline.id, result="no canary")
        return "no canary"
    ports = _ports(ctx)
    running = 0
    for model, base_sha in sorted(wanted.items()):
        row = _rollout(ctx, deadline, pull, model)
        running += _visit(ctx, ports, client, pull, row, policy, base_sha)
    refresh_pr(ctx, client=client, repo=repo, pull=pull, policy=policy)
    _arm_monitoring(ctx, deadline)
    if running:
        due = ctx.clock.now() + timedelta(seconds=ctx.settings.canary_check_interval_s)
        again_at(ctx.store, deadline_id=deadline.id, due_at=due)
        return "rolling out"
    settle(ctx.store, deadline_id=deadline.id, result="rolled out")
    return "rolled out"


def _arm_monitoring(ctx: BotContext, deadline: Deadline) -> None:
    """What this head promoted is watched in production from now on (bot/monitoring), armed
    before the deadline settles so a crash in between arms it at the next visit."""
    with ctx.store.session() as session:
        promoted = session.scalar(
            select(CanaryRollout.id).where(
                CanaryRollout.repository == deadline.repository,
                CanaryRollout.pr_number == deadline.pr_number,
                CanaryRollout.head_sha == deadline.head_sha,
                CanaryRollout.status == CanaryStatus.PROMOTED.value,
            )
        )
        if promoted is not None and ctx.settings.monitoring_enabled:
            arm_once(
                session,
                kind=MONITOR_CHECK,
                repository=deadline.repository,
                installation_id=deadline.installation_id,
                pr_number=deadline.pr_number,
                head_sha=deadline.head_sha,
                due_at=ctx.clock.now(),
            )


def _rollout(ctx: BotContext, deadline: Deadline, pull: PullRequest, model: str) -> CanaryRollout:
    """The rollout row for this model and merged head, written once (UNIQUE decides races)."""
    key = (
        CanaryRollout.repository == deadline.repository,
        CanaryRollout.pr_number == deadline.pr_number,
        CanaryRollout.head_sha == deadline.head_sha,
        CanaryRollout.model == model,
    )
    now = ctx.clock.now()
    with ctx.store.session() as session:
        row = session.scalar(select(CanaryRollout).where(*key))
        if row is None:
            assert pull.merge_commit_sha is not None
            row = CanaryRollout(
                repository=deadline.repository,
                installation_id=deadline.installation_id,
                pr_number=deadline.pr_number,
                head_sha=deadline.head_sha,
                merge_sha=pull.merge_commit_sha,
                base_ref=pull.base.ref,
                model=model,
                version=candidate_version(deadline.pr_number, deadline.head_sha),
                status=CanaryStatus.RUNNING.value,
                routed=False,
                step_index=0,
                step_started_at=now,
                started_at=now,
                failures=0,
                title="starting",
                paged=False,
            )
            session.add(row)
            session.flush()
        session.expunge(row)
        return row


def _reload(ctx: BotContext, row_id: int) -> CanaryRollout:
    with ctx.store.session() as session:
        row = session.get(CanaryRollout, row_id)
        assert row is not None
        session.expunge(row)
        return row


def _visit(
    ctx: BotContext,
    ports: tuple[ArtifactStore, TrafficRouter, MetricsSource],
    client: InstallationClient,
    pull: PullRequest,
    row: CanaryRollout,
    policy: Policy,
    base_sha: str,
) -> int:
    """One model's turn; 1 while it still needs periodic visits."""
    store, router, source = ports
    if row.requested_action:
        _carry_out_request(ctx, row, policy)
        row = _reload(ctx, row.id)
    if row.status in ACTIVE and not row.routed:
        started = _start(ctx, store, router, client, row, policy, base_sha)
        row = _reload(ctx, row.id)
        if not started:
            # Waiting for the slot (visited again), or paused for a person (paged).
            canary_outcome.finish(ctx, row, policy, pull.html_url or "")
            canary_outcome.show(ctx, client, _reload(ctx, row.id), policy)
            return 1 if row.status == CanaryStatus.RUNNING.value else 0
    _converge(router, row, policy)
    if row.status == CanaryStatus.RUNNING.value and _analysis_due(ctx, row, policy):
        _analyse(ctx, source, row, policy)
        row = _reload(ctx, row.id)
        _converge(router, row, policy)
    # The revert PR first, so the check run and the deployment can name it.
    canary_outcome.finish(ctx, row, policy, pull.html_url or "")
    canary_outcome.show(ctx, client, _reload(ctx, row.id), policy)
    return 1 if row.status == CanaryStatus.RUNNING.value else 0


def _start(
    ctx: BotContext,
    store: ArtifactStore,
    router: TrafficRouter,
    client: InstallationClient,
    row: CanaryRollout,
    policy: Policy,
    base_sha: str,
) -> bool:
    """Publish the merged model and note what production was; False while it must wait."""
    route = router.current(row.model)
    if route is not None and route.canary is not None and route.canary.version != row.version:
        _write(ctx, row.id, title=f"waiting: {route.canary.version} is still rolling out")
        return False
    directory = f"{policy.models_root}/{row.model}"
    repository = Repository(full_name=row.repository)
    try:
        with tempfile.TemporaryDirectory(prefix="shipyard-canary-") as tmp:
            merged = read_model_dir(client, repository, row.merge_sha, directory)
            sha = store.publish(
                materialise(merged, Path(tmp) / "merged"),
                model=row.model,
                version=row.version,
                classify=ctx.auditor.classify,
            )
            production = route.production if route else None
            if production is None:
                # The gateway serves nothing for this model yet: production is the base's.
                baseline = read_model_dir(client, repository, base_sha, directory)
                if not baseline.files:
                    _pause(
                        ctx,
                        row.id,
                        f"{row.model} has no production version to compare a canary with; "
                        "serve it with `shipyard-gateway route`, then /resume",
                    )
                    return False
                version = f"base-{base_sha[:12]}"
                production = Deployed(
                    version=version,
                    sha256=store.publish(
                        materialise(baseline, Path(tmp) / "baseline"),
                        model=row.model,
                        version=version,
                        classify=ctx.auditor.classify,
                    ),
                )
    except StoreError as exc:
        log.warning("canary %s could not start: %s", row.id, exc)
        _pause(ctx, row.id, "the production artifact store refused the merged model's bundle")
        return False
    if production.version == row.version:
        # Already production (an operator deployed it, or a promotion this row missed).
        _write(ctx, row.id, status=CanaryStatus.PROMOTED, title="already in production")
        return False
    now = ctx.clock.now()
    with ctx.store.session() as session:
        live = session.get(CanaryRollout, row.id)
        assert live is not None
        live.sha256 = sha
        live.previous_version = production.version
        live.previous_sha256 = production.sha256
        live.reference_scores = _shadow_scores(ctx, row)
        live.routed = True
        live.step_index = 0
        live.step_started_at = now
        live.data_since = now
        live.last_analysis_at = now  # the first analysis looks at the first full interval
        live.title = f"at {policy.canary.steps[0]}%: started"
        audit.record(
            session,
            at=now,
            repository=row.repository,
            kind="canary_started",
            pr_number=row.pr_number,
            head_sha=row.head_sha,
            reason=f"{row.model} {row.version} takes {policy.canary.steps[0]}% from "
            f"{production.version}",
        )
    return True


def _shadow_scores(ctx: BotContext, row: CanaryRollout) -> list[float] | None:
    """The candidate's own score histogram from its shadow stage (the canary's output is
    judged against it); None when it had no shadow or the staging log is unreachable."""
    if not ctx.settings.shadow_artifact_store:
        return None
    with ctx.store.session() as session:
        stage = session.scalar(
            select(ShadowStage).where(
                ShadowStage.repository == row.repository,
                ShadowStage.pr_number == row.pr_number,
                ShadowStage.head_sha == row.head_sha,
                ShadowStage.model == row.model,
            )
        )
        if stage is None or not stage.routed:
            return None
        started, version = stage.started_at, stage.version
    try:
        logged = read_prediction_log(
            ArtifactStore(ctx.settings.shadow_artifact_store),
            row.model,
            names.VARIANT_SHADOW,
            since=started,
        )
    except (OSError, ValueError, StoreError) as exc:
        log.warning("canary %s: shadow log unreadable: %s", row.id, exc)
        return None
    scores = logged[logged[names.LOG_VERSION] == version][names.LOG_SCORE].dropna()
    if scores.empty:
        return None
    return list(score_counts(scores.to_numpy(dtype=float)))


def _intent(row: CanaryRollout, policy: Policy) -> Intent | None:
    if not row.routed or row.sha256 is None or row.previous_version is None:
        return None
    assert row.previous_sha256 is not None
    steps = policy.canary.steps
    return Intent(
        status=row.status,
        version=row.version,
        sha256=row.sha256,
        previous_version=row.previous_version,
        previous_sha256=row.previous_sha256,
        weight=steps[min(row.step_index, len(steps) - 1)] / 100,
    )


def _converge(router: TrafficRouter, row: CanaryRollout, policy: Policy) -> None:
    """Make the route in effect the one the row wants (RouterError propagates: the deadline
    retries after a back-off, and the row still says what traffic should be)."""
    intent = _intent(row, policy)
    if intent is None:
        return
    route = wanted_route(intent, router.current(row.model))
    if route is not None:
        router.apply(row.model, route)


def _analysis_due(ctx: BotContext, row: CanaryRollout, policy: Policy) -> bool:
    if row.last_analysis_at is None:
        return True
    interval = timedelta(minutes=policy.canary.analysis_interval_minutes)
    return ctx.clock.now() - row.last_analysis_at >= interval


def _analyse(ctx: BotContext, source: MetricsSource, row: CanaryRollout, policy: Policy) -> None:
    now = ctx.clock.now()
    assert row.previous_version is not None
    readings = canary_readings.read(
        source,
        model=row.model,
        canary_version=row.version,
        production_version=row.previous_version,
        policy=policy.canary,
        now=now,
        step_started_at=row.step_started_at,
        everything=policy.canary.steps[row.step_index] == 100,
    )
    progress = CanaryProgress(
        step_index=row.step_index,
        time_at_step=now - row.step_started_at,
        step_requests=readings.step_requests,
        step_errors_production_rate=readings.production_error_rate,
        failures=row.failures,
        without_data=now - (row.data_since or row.step_started_at),
        reference_scores=tuple(row.reference_scores) if row.reference_scores else None,
    )
    decision = decide_canary(
        policy=policy.canary,
        progress=progress,
        window=readings.window,
        confidence=policy.statistics.confidence,
    )
    steps = policy.canary.steps
    table = render_table(decision.checks)
    reason = (
        decision.reason
        if readings.window is not None or not readings.note
        else (f"{decision.reason} ({readings.note})")
    )
    with ctx.store.session() as session:
        live = session.get(CanaryRollout, row.id)
        assert live is not None
        if live.status != CanaryStatus.RUNNING.value or live.requested_action:
            return  # a person acted meanwhile: their request is carried out at the next visit
        live.last_analysis_at = now
        live.failures = decision.failures
        if decision.had_data:
            live.data_since = now
        live.lines = [line[:1000] for line in table[:40]]
        at = f"at {steps[live.step_index]}%"
        move = decision.move
        if move is CanaryMove.ADVANCE:
            live.step_index += 1
            live.step_started_at = now
            live.data_since = now
            live.title = reason  # "advancing from 10% to 50%: …"
        elif move is CanaryMove.PROMOTE:
            live.status = CanaryStatus.PROMOTED.value
            live.ended_at = now
            live.title = f"promoted: {reason}"
        elif move is CanaryMove.ROLLBACK:
            live.status = CanaryStatus.ROLLED_BACK.value
            live.ended_at = now
            live.reason = f"{at}: {reason}"
            live.title = f"rolled back {at}: {reason}"
        elif move is CanaryMove.PAUSE:
            live.status = CanaryStatus.PAUSED.value
            live.reason = f"{at}: {reason}"
            live.title = f"paused {at}: {reason}"
        else:
            live.title = reason  # what it holds for: "… holding at 10%: 3 of 10 min, …"
        live.title = live.title[:500]
        if move is not CanaryMove.HOLD:
            audit.record(
                session,
                at=now,
                repository=row.repository,
                kind=f"canary_{move.value}",
                pr_number=row.pr_number,
                head_sha=row.head_sha,
                reason=f"{row.model}: {live.title}"[:500],
            )


def _carry_out_request(ctx: BotContext, row: CanaryRollout, policy: Policy) -> None:
    """A person's request, once: the columns are cleared in the same transaction."""
    now = ctx.clock.now()
    steps = policy.canary.steps
    with ctx.store.session() as session:
        # Locked as `canary_requests.request` locks it: a request committed meanwhile on
        # another replica is either seen here or waits, never wiped unseen.
        live = session.get(CanaryRollout, row.id, with_for_update=True)
        assert live is not None
        action, who = live.requested_action, live.requested_by or "someone"
        why = live.requested_reason or ""
        live.requested_action = live.requested_by = live.requested_reason = None
        at = f"at {steps[min(live.step_index, len(steps) - 1)]}%"
        active = live.status in ACTIVE
        if action == CanaryAction.ROLLBACK.value and active:
            live.status = CanaryStatus.ROLLED_BACK.value
            live.ended_at = now
            live.ended_by = who
            live.reason = f"{at}: /rollback by @{who}" + (f": {why}" if why else "")
            live.title = f"rolled back {live.reason}"[:500]
        elif action == CanaryAction.PAUSE.value and live.status == CanaryStatus.RUNNING.value:
            live.status = CanaryStatus.PAUSED.value
            live.ended_by = who
            live.reason = f"{at}: /pause by @{who}"
            live.title = f"paused {live.reason}"[:500]
        elif action == CanaryAction.RESUME.value and live.status == CanaryStatus.PAUSED.value:
            live.status = CanaryStatus.RUNNING.value
            live.ended_by = None
            live.data_since = now  # time paused is not time without data
            live.last_analysis_at = None
            live.title = f"resumed {at} by @{who}"[:500]
        elif action == CanaryAction.PROMOTE.value and active and live.routed:
            live.status = CanaryStatus.PROMOTED.value
            live.ended_at = now
            live.ended_by = who
            live.title = f"promoted {at} by @{who}: the remaining steps were skipped"[:500]
        elif action == CanaryAction.ACKNOWLEDGE.value and live.paged:
            live.acknowledged_by = who  # the page is resolved by `canary_outcome.finish`
        else:
            return
        if live.paged and action != CanaryAction.ACKNOWLEDGE.value:
            live.acknowledged_by = who  # a person acting on a paged canary has seen the page
        audit.record(
            session,
            at=now,
            actor=who,
            repository=row.repository,
            kind=f"canary_{action}",
            pr_number=row.pr_number,
            head_sha=row.head_sha,
            reason=f"{row.model}: {why}"[:500] if why else row.model,
        )


def _write(ctx: BotContext, row_id: int, *, title: str, status: CanaryStatus | None = None) -> None:
    with ctx.store.session() as session:
        live = session.get(CanaryRollout, row_id)
        assert live is not None
        live.title = title[:500]
        if status is not None:
            live.status = status.value
            live.ended_at = ctx.clock.now()


def _pause(ctx: BotContext, row_id: int, reason: str) -> None:
    with ctx.store.session() as session:
        live = session.get(CanaryRollout, row_id)
        assert live is not None
        live.status = CanaryStatus.PAUSED.value
        live.reason = reason
        live.title = f"paused: {reason}"[:500]
