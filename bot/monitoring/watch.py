"""Pipeline step 6 begins: a canary promoted, so production now serves the merged model, and
Shipyard watches it. One monitor row per model and version (written once: UNIQUE decides a
race), and the version it replaces stops being watched (its open alerts resolve)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from bot.github.registry_reader import read_policy
from bot.monitoring.check_state import CheckState
from bot.monitoring.reference import shadow_scores
from bot.promotion import audit
from bot.runtime.context import BotContext
from bot.store.models import (
    CanaryRollout,
    CanaryStatus,
    Deadline,
    MonitorStatus,
    ProductionMonitor,
    ShadowStage,
)
from evaluators.judgement.monitoring import AlertStatus
from evaluators.policy import MonitoringPolicy


def watch(ctx: BotContext, rollout: CanaryRollout, policy: MonitoringPolicy) -> None:
    """Start watching the model `rollout` promoted (nothing when already watched)."""
    if rollout.status != CanaryStatus.PROMOTED.value or not policy.enabled:
        return
    key = (
        ProductionMonitor.repository == rollout.repository,
        ProductionMonitor.model == rollout.model,
        ProductionMonitor.version == rollout.version,
    )
    with ctx.store.session() as session:
        if session.scalar(select(ProductionMonitor.id).where(*key)) is not None:
            return
        stage = session.scalar(
            select(ShadowStage).where(
                ShadowStage.repository == rollout.repository,
                ShadowStage.pr_number == rollout.pr_number,
                ShadowStage.head_sha == rollout.head_sha,
                ShadowStage.model == rollout.model,
            )
        )
        shadow_since = stage.started_at if stage is not None and stage.routed else None
    shadow = (
        shadow_scores(
            ctx.settings.shadow_artifact_store,
            model=rollout.model,
            version=rollout.version,
            since=shadow_since,
            column=policy.prediction_column,
        )
        if shadow_since is not None
        else None
    )
    promoted_at = rollout.ended_at or ctx.clock.now()
    with ctx.store.session() as session:
        if session.scalar(select(ProductionMonitor.id).where(*key)) is not None:
            return
        for older in session.scalars(
            select(ProductionMonitor).where(
                ProductionMonitor.repository == rollout.repository,
                ProductionMonitor.model == rollout.model,
                ProductionMonitor.status == MonitorStatus.WATCHING.value,
            )
        ):
            _replace(older, rollout.version, promoted_at.isoformat())
        session.add(
            ProductionMonitor(
                repository=rollout.repository,
                installation_id=rollout.installation_id,
                model=rollout.model,
                version=rollout.version,
                pr_number=rollout.pr_number,
                head_sha=rollout.head_sha,
                merge_sha=rollout.merge_sha,
                base_ref=rollout.base_ref,
                status=MonitorStatus.WATCHING.value,
                promoted_at=promoted_at,
                window_end=promoted_at,
                checks={},
                volume_history=[],
                shadow_profile=shadow,
            )
        )
        audit.record(
            session,
            at=ctx.clock.now(),
            repository=rollout.repository,
            kind="monitoring_started",
            pr_number=rollout.pr_number,
            head_sha=rollout.head_sha,
            reason=f"{rollout.model} {rollout.version}"[:500],
        )


def watch_promoted(ctx: BotContext, deadline: Deadline) -> None:
    """Watch each model the merged head's canary promoted, by analysis, by /promote or found
    already in production (the canary arms the head's `MONITOR_CHECK`; its visit calls this,
    so a crash before the monitor row exists is made good at the next visit)."""
    with ctx.store.session() as session:
        watched = select(ProductionMonitor.id).where(
            ProductionMonitor.repository == CanaryRollout.repository,
            ProductionMonitor.model == CanaryRollout.model,
            ProductionMonitor.version == CanaryRollout.version,
        )
        promoted = list(
            session.scalars(
                select(CanaryRollout).where(
                    CanaryRollout.repository == deadline.repository,
                    CanaryRollout.pr_number == deadline.pr_number,
                    CanaryRollout.head_sha == deadline.head_sha,
                    CanaryRollout.status == CanaryStatus.PROMOTED.value,
                    ~watched.exists(),
                )
            )
        )
        for row in promoted:
            session.expunge(row)
    if not promoted:
        return
    client = ctx.github.installation(deadline.installation_id)
    policy = read_policy(client, deadline.repository, promoted[0].base_ref)
    for row in promoted:
        watch(ctx, row, policy.monitoring)


def _replace(monitor: ProductionMonitor, by_version: str, at: str) -> None:
    """A newer version serves production: the older one's open alerts are over."""
    monitor.status = MonitorStatus.REPLACED.value
    checks = dict(monitor.checks or {})
    for name, data in checks.items():
        state = CheckState.from_json(data)
        if state.status is not AlertStatus.OK:
            state = replace(
                state,
                status=AlertStatus.OK,
                resolved_at=at,
                replaced_by=by_version,
                announce=True,
            )
            checks[name] = state.to_json()
    monitor.checks = checks


__all__ = ["watch", "watch_promoted"]
