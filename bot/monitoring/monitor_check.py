"""Pipeline step 6: the scheduled checks of production models (docs/monitoring.md).

One `MONITOR_CHECK` deadline per merged head whose canary promoted models drives each of them.
Each visit judges every whole window of production traffic that has ended (plus the grace the
gateways need to write their log) since the last one, oldest first; a window's judgement, the
alert state per check and the window's drift report are written in one transaction that
also moves the monitor's `window_end`, so a restart or a second replica neither skips nor
doubles a window. Then what each check's latest change owes people is handed to the outbox
(`announce`), and the deadline is due again at the end of the next window.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.github.registry_reader import read_policy
from bot.monitoring import reference, window_reader
from bot.monitoring.announce import announce
from bot.monitoring.check_state import CheckState, step
from bot.monitoring.watch import watch_promoted
from bot.promotion import audit
from bot.promotion.deadlines import again_at, settle
from bot.runtime.context import BotContext
from bot.store.models import Deadline, DriftCheck, MonitorStatus, ProductionMonitor
from evaluators.drift_report import PredictionPoint, build_drift_report, prediction_point
from evaluators.judgement.monitoring import (
    WindowJudgement,
    check_lines,
    check_severities,
    judge_window,
)
from evaluators.policy import Policy
from evaluators.statistics.drift import ReferenceProfile
from evaluators.statistics.drift_tests import FeatureTests
from evaluators.statistics.monitoring_window import measure_window
from gateway.store import ArtifactStore

log = logging.getLogger(__name__)

MAX_WINDOWS_PER_VISIT = 24  # after a longer outage the oldest windows are skipped, and said so
DISABLED_RECHECK = timedelta(hours=1)
HISTORY_POINTS = 24 * 14  # earlier windows in a report's prediction-over-time chart
NO_PROFILE = ReferenceProfile(rows=1, features={})
BASELINE = "the first week"
SHADOW = "shadow"


def check(ctx: BotContext, deadline: Deadline) -> str:
    """One visit to the models a merged head promoted; returns what the deadline records."""
    watch_promoted(ctx, deadline)
    with ctx.store.session() as session:
        monitors = list(
            session.scalars(
                select(ProductionMonitor)
                .where(
                    ProductionMonitor.repository == deadline.repository,
                    ProductionMonitor.pr_number == deadline.pr_number,
                    ProductionMonitor.head_sha == deadline.head_sha,
                )
                .order_by(ProductionMonitor.model)
            )
        )
        for monitor in monitors:
            session.expunge(monitor)
    if not monitors:
        settle(ctx.store, deadline_id=deadline.id, result="nothing to watch")
        return "nothing to watch"
    client = ctx.github.installation(deadline.installation_id)
    # The registry's policy as it is now: thresholds tuned after the promotion apply.
    policy = read_policy(client, deadline.repository, monitors[0].base_ref)
    assert ctx.settings.canary_artifact_store is not None
    store = ArtifactStore(ctx.settings.canary_artifact_store)
    due: datetime | None = None
    for monitor in monitors:
        if monitor.status == MonitorStatus.WATCHING.value:
            # Switched off in the policy: look again later, in case it is switched back on
            # (then up to MAX_WINDOWS_PER_VISIT windows are caught up on, the rest skipped).
            next_due = (
                _visit(ctx, store, monitor, policy)
                if policy.monitoring.enabled
                else ctx.clock.now() + DISABLED_RECHECK
            )
            due = next_due if due is None else min(due, next_due)
        announce(ctx, _reload(ctx, monitor.id), policy)
    if due is None:
        settle(ctx.store, deadline_id=deadline.id, result="not watching")
        return "not watching"
    again_at(ctx.store, deadline_id=deadline.id, due_at=due)
    return "watching"


def _reload(ctx: BotContext, monitor_id: int) -> ProductionMonitor:
    with ctx.store.session() as session:
        row = session.get(ProductionMonitor, monitor_id)
        assert row is not None
        session.expunge(row)
        return row


@dataclass(frozen=True)
class _Plan:
    windows: list[tuple[datetime, datetime]]
    skipped: int  # whole windows too old to catch up on


def plan_windows(
    window_end: datetime, now: datetime, *, length: timedelta, grace: timedelta
) -> _Plan:
    """The whole windows that ended (and had their grace) since `window_end`, oldest first."""
    ready = int((now - grace - window_end) / length) if now - grace > window_end else 0
    skipped = max(0, ready - MAX_WINDOWS_PER_VISIT)
    start = window_end + skipped * length
    windows = [(start + i * length, start + (i + 1) * length) for i in range(ready - skipped)]
    return _Plan(windows, skipped)


def _visit(
    ctx: BotContext, store: ArtifactStore, monitor: ProductionMonitor, policy: Policy
) -> datetime:
    """Judge the ended windows of one monitor; when its deadline is next due."""
    watch = policy.monitoring
    length = timedelta(minutes=watch.interval_minutes)
    grace = timedelta(seconds=ctx.settings.monitor_grace_s)
    plan = plan_windows(monitor.window_end, ctx.clock.now(), length=length, grace=grace)
    if plan.windows:
        if plan.skipped:
            _skip(ctx, monitor, plan.skipped, plan.windows[0][0])
        profile = (
            reference.training_profile(
                ctx.settings, store, policy, model=monitor.model, version=monitor.version
            )
            or NO_PROFILE
        )
        baseline = _baseline(ctx, store, monitor, policy, before=plan.windows[-1][1])
        logged = window_reader.read_since(
            store, model=monitor.model, version=monitor.version, since=plan.windows[0][0]
        )
        week = ReferenceProfile.from_json(baseline) if baseline is not None else None
        shadow = (
            ReferenceProfile.from_json(monitor.shadow_profile) if monitor.shadow_profile else None
        )
        for start, end in plan.windows:
            window = window_reader.window_of(
                logged,
                start=start,
                end=end,
                profile=profile,
                score_column=watch.prediction_column,
            )
            references = {}
            if week is not None and start >= _baseline_end(monitor, policy):
                references[BASELINE] = week
            if shadow is not None:
                references[SHADOW] = shadow
            _judge(ctx, _reload(ctx, monitor.id), window, profile, references, policy)
    current = _reload(ctx, monitor.id)
    return current.window_end + length + grace


def _baseline_end(monitor: ProductionMonitor, policy: Policy) -> datetime:
    return monitor.promoted_at + timedelta(hours=policy.monitoring.baseline_hours)


def _baseline(
    ctx: BotContext,
    store: ArtifactStore,
    monitor: ProductionMonitor,
    policy: Policy,
    *,
    before: datetime,
) -> str | None:
    """The first week's score profile, built once the week is over (kept on the row)."""
    if monitor.baseline_profile is not None:
        return monitor.baseline_profile
    end = _baseline_end(monitor, policy)
    if before < end:
        return None
    logged = window_reader.read_since(
        store, model=monitor.model, version=monitor.version, since=monitor.promoted_at
    )
    week = logged[logged["_time"] < end]
    built = reference.scores_profile(week["score"], policy.monitoring.prediction_column)
    if built is not None:
        with ctx.store.session() as session:
            live = session.get(ProductionMonitor, monitor.id)
            assert live is not None
            live.baseline_profile = built
    return built


def _skip(ctx: BotContext, monitor: ProductionMonitor, skipped: int, to: datetime) -> None:
    with ctx.store.session() as session:
        live = session.get(ProductionMonitor, monitor.id, with_for_update=True)
        assert live is not None
        if live.window_end >= to:
            return
        live.window_end = to
        audit.record(
            session,
            at=ctx.clock.now(),
            repository=monitor.repository,
            kind="monitoring_skipped",
            pr_number=monitor.pr_number,
            head_sha=monitor.head_sha,
            reason=f"{monitor.model}: {skipped} windows were not judged (the bot was away)",
        )


def _history(ctx: BotContext, monitor_id: int) -> list[PredictionPoint]:
    with ctx.store.session() as session:
        points = session.scalars(
            select(DriftCheck.point)
            .where(DriftCheck.monitor_id == monitor_id)
            .order_by(DriftCheck.window_end.desc())
            .limit(HISTORY_POINTS)
        )
        return [PredictionPoint.model_validate(p) for p in reversed(list(points)) if p]


def _judge(
    ctx: BotContext,
    monitor: ProductionMonitor,
    window: window_reader.ProductionWindow,
    profile: ReferenceProfile,
    references: dict[str, ReferenceProfile],
    policy: Policy,
) -> None:
    watch = policy.monitoring
    measured = measure_window(
        profile,
        window.sample,
        policy=watch,
        history=list(monitor.volume_history or []),
        score_references=references,
        rows=window.rows,
        columns=window.columns,
        ignore=window.context,  # segment columns callers send as context are not new inputs
    )
    judgement = judge_window(
        watch, drift=measured.drift, quality=measured.quality, predictions=measured.predictions
    )
    report_id = secrets.token_urlsafe(24)
    # Each check after this window: shown in the report, stored below unless the row moved.
    stepped = {}
    for c, severity in check_severities(judgement).items():
        lines = check_lines(judgement, c)
        stepped[c] = step(
            CheckState.from_json((monitor.checks or {}).get(c.value)),
            severity,
            line=lines[0] if lines else "",
            end=window.end,
            report_id=report_id,
            policy=watch,
        )
    alerts = {c.label: new.status.value for c, (new, _) in stepped.items()}
    report = build_drift_report(
        repository=monitor.repository,
        model=monitor.model,
        version=monitor.version,
        window_start=window.start,
        window_end=window.end,
        profile=profile,
        sample=window.sample,
        measurements=measured,
        judgement=judgement,
        alerts=alerts,
        history=_history(ctx, monitor.id),
        prediction_column=watch.prediction_column,
        min_rows=watch.min_rows,
    )
    now = ctx.clock.now()
    with ctx.store.session() as session:
        live = session.get(ProductionMonitor, monitor.id, with_for_update=True)
        assert live is not None
        if (
            live.window_end != window.start
            or live.status != MonitorStatus.WATCHING.value
            or live.checks != monitor.checks
        ):
            return  # judged meanwhile (a stale visitor), replaced, or its alerts handed over
        checks = dict(live.checks or {})
        for c, (new, event) in stepped.items():
            checks[c.value] = new.to_json()
            if event is not None:
                audit.record(
                    session,
                    at=now,
                    repository=live.repository,
                    kind=f"monitoring_{event.value}",
                    pr_number=live.pr_number,
                    head_sha=live.head_sha,
                    reason=f"{live.model} {c.label}: {new.status.value}"[:500],
                )
        live.checks = checks
        live.window_end = window.end
        keep = watch.quality.volume_history
        live.volume_history = [*(live.volume_history or []), window.rows][-keep:]
        live.last_checked_at = now
        live.last_severity = judgement.severity.name.lower()
        live.last_report_id = report_id
        live.lines = [line[:1000] for line in judgement.lines()[:20]]
        live.scores = _scores(measured.drift, judgement)
        session.add(
            DriftCheck(
                id=report_id,
                monitor_id=live.id,
                window_start=window.start,
                window_end=window.end,
                severity=live.last_severity,
                created_at=now,
                report_json=report.model_dump_json(),
                point=prediction_point(window.end, window.scores).model_dump(mode="json"),
            )
        )


MAX_EXPORTED_FEATURES = 50


def _scores(
    drift: Sequence[FeatureTests], judgement: WindowJudgement
) -> dict[str, dict[str, float]]:
    """The drift scores exported as Prometheus metrics: the worst features', bounded."""
    by_name = {tests.feature: tests for tests in drift}
    scores = {}
    for judged in judgement.features[:MAX_EXPORTED_FEATURES]:
        tests = by_name[judged.feature]
        values = {"psi": tests.psi, "js": tests.js}
        values["wasserstein"] = tests.wasserstein.value if tests.wasserstein else None
        scores[judged.feature[:200]] = {k: float(v) for k, v in values.items() if v is not None}
    return scores


__all__ = ["check", "plan_windows"]
