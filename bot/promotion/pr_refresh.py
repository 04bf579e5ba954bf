"""Recompute a PR's gate from the record and show it: the gate check and the report comment."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select

from bot.github.api import InstallationClient
from bot.github.check_names import GATE_CHECK
from bot.github.objects import PullRequest
from bot.github.registry_reader import Production, read_policy, read_production
from bot.promotion import audit
from bot.promotion.check_runs import CheckOutput, publish
from bot.promotion.gate_decision import (
    CanaryView,
    GateConclusion,
    GateDecision,
    ShadowView,
    decide_gate,
)
from bot.promotion.promotion_state import latest_evaluations, state_of_pull
from bot.promotion.report_comment import has_report_comment, upsert_report_comment
from bot.runtime.context import BotContext, PromotionChange
from bot.store.models import AuditEvent, Evaluation, Report
from evaluators.escaping import code_span, markdown
from evaluators.policy import Policy
from evaluators.rendering.render import render_pr_comment
from evaluators.report import EvaluationReport

log = logging.getLogger(__name__)

_ICON = {
    GateConclusion.SUCCESS: "✅",
    GateConclusion.ACTION_REQUIRED: "⏸️",
    GateConclusion.FAILURE: "❌",
}


def refresh_pr(
    ctx: BotContext,
    *,
    client: InstallationClient,
    repo: str,
    pull: PullRequest,
    policy: Policy | None = None,
    post_comment: bool = True,
    production: Production | None = None,
) -> GateDecision:
    """Idempotent: the same record always yields the same check and comment."""
    if policy is None:
        production = production or read_production(client, repo)
        policy = read_policy(client, repo, production.sha)
    with ctx.store.session() as session:
        state = state_of_pull(session, repo=repo, pull=pull, policy=policy)
        evaluations = latest_evaluations(
            session, repository=repo, pr_number=pull.number, head_sha=pull.head.sha
        )
        report_ids = [e.report_id for e in evaluations.values() if e.report_id]
        reports = list(session.scalars(select(Report).where(Report.id.in_(report_ids))))
        rows = audit.trail(session, repository=repo, pr_number=pull.number)
    decision = decide_gate(state, now=ctx.clock.now())
    # Every state change writes an audit row, so the newest row id orders renderings made
    # concurrently (two replicas): an older one never overwrites a newer one.
    version = max((r.id for r in rows), default=0)
    # The gate is published even for a PR that touches no model: branch protection requires
    # it, so without it nothing else could merge. Such a PR gets no comment or message.
    publish(
        client=client,
        store=ctx.store,
        now=ctx.clock.now(),
        repo=repo,
        head_sha=pull.head.sha,
        name=GATE_CHECK,
        status=decision.status,
        conclusion=decision.conclusion.value if decision.conclusion else None,
        output=CheckOutput(title=decision.title, summary=decision.summary()),
        external_id="gate",
        version=version,
    )
    # Once posted, the report comment is kept current even when no model is left in the PR:
    # an old "Needs review" must not outlive the model directory it was about.
    commented = has_report_comment(ctx.store, repo=repo, pr_number=pull.number)
    if not state.candidates and not commented:
        return decision
    if post_comment and (reports or state.blocks or state.approvals or commented):
        body = render_pr_body(
            decision=decision,
            head_sha=pull.head.sha,
            reports=sorted(reports, key=lambda r: r.model),
            trail=rows,
            public_url=ctx.settings.public_url,
            gone=_models_gone(ctx, repo, pull, {c.model for c in state.candidates}),
            shadows=state.shadows,
            canaries=state.canaries,
        )
        upsert_report_comment(
            client=client,
            store=ctx.store,
            repo=repo,
            pr_number=pull.number,
            body=body,
            version=version,
        )
    if not state.candidates:
        return decision
    _tell_listeners(
        ctx,
        client=client,
        repo=repo,
        pull=pull,
        policy=policy,
        decision=decision,
        reports=reports,
        shadows=state.shadows,
    )
    return decision


def _tell_listeners(
    ctx: BotContext,
    *,
    client: InstallationClient,
    repo: str,
    pull: PullRequest,
    policy: Policy,
    decision: GateDecision,
    reports: list[Report],
    shadows: tuple[ShadowView, ...],
) -> None:
    """Notify subscribers (Slack); a failing listener never breaks the gate."""
    if not ctx.promotion_listeners:
        return
    with ctx.store.session() as session:
        evaluations = latest_evaluations(
            session, repository=repo, pr_number=pull.number, head_sha=pull.head.sha
        )
        headlines = tuple(f"{e.model}: {e.headline or e.status}" for e in evaluations.values())
    change = PromotionChange(
        repository=repo,
        installation_id=client.installation_id,
        pr_number=pull.number,
        pr_title=pull.title,
        pr_url=pull.html_url,
        head_sha=pull.head.sha,
        gate_title=decision.title,
        gate_conclusion=decision.conclusion.value if decision.conclusion else None,
        window_ends_at=decision.window_ends_at,
        headlines=headlines,
        report_urls=tuple(f"{ctx.settings.public_url}/reports/{r.id}" for r in reports),
        policy=policy,
        shadow_lines=tuple(f"{v.model}: {v.title}" for v in shadows),
    )
    for listener in ctx.promotion_listeners:
        try:
            listener(change)
        except Exception:
            log.exception("promotion listener failed for %s#%s", repo, pull.number)


def render_pr_body(
    *,
    decision: GateDecision,
    head_sha: str,
    reports: list[Report],
    trail: list[AuditEvent],
    public_url: str,
    gone: Sequence[str] = (),
    shadows: Sequence[ShadowView] = (),
    canaries: Sequence[CanaryView] = (),
) -> str:
    """Gate status first, then shadow traffic, each model's report, then the audit trail."""
    icon = _ICON.get(decision.conclusion, "⏳") if decision.conclusion else "⏳"
    lines = [
        f"### {icon} Shipyard promotion gate for `{head_sha[:7]}`: "
        + markdown(decision.title, max_length=300),
        "",
        *[f"- {markdown(r, max_length=500)}" for r in decision.reasons],
        *[
            f"- {code_span(model)} is no longer part of this pull request at `{head_sha[:7]}`; "
            "its earlier report no longer applies."
            for model in gone
        ],
        "",
    ]
    lines += canary_section(canaries)
    lines += shadow_section(shadows)
    budget = 60_000 // max(1, len(reports))  # several models share one comment
    for report in reports:
        lines += [
            render_pr_comment(
                EvaluationReport.model_validate_json(report.report_json),
                html_url=f"{public_url}/reports/{report.id}",
                max_chars=budget - 2_000,
            ),
            "",
        ]
    if trail:
        lines += [
            "<details><summary>Audit trail</summary>",
            "",
            "| when | who | what | SHA | why |",
            "|---|---|---|---|---|",
        ]
        for row in trail[-50:]:
            why = markdown(row.reason or "", max_length=200)  # escapes `|` too
            lines.append(
                f"| {row.at:%Y-%m-%d %H:%M} UTC | {code_span(row.actor or '', in_table=True)} | "
                f"{markdown(row.kind)} | "
                f"`{(row.head_sha or '')[:7]}` | {why} |"
            )
        lines += ["", "</details>"]
    lines += [
        "",
        "Commands: `/approve [note]`, `/block <reason>`, `/unblock`, `/retest`, "
        "`/status`, `/help`.",
    ]
    return "\n".join(lines)


def canary_section(canaries: Sequence[CanaryView]) -> list[str]:
    """Each merged model's production rollout: its state line, then the last metric table
    (rendered and escaped by the pure canary judgement)."""
    if not canaries:
        return []
    lines = ["#### Production rollout (canary)", ""]
    for view in canaries:
        lines.append(
            f"- {code_span(view.model)} ({markdown(view.status)}): "
            + markdown(view.title, max_length=500)
        )
    for view in canaries:
        if view.lines:
            lines += ["", f"{code_span(view.model)}, last analysis:", "", *view.lines[:30]]
    return [*lines, ""]


def shadow_section(shadows: Sequence[ShadowView]) -> list[str]:
    """Each model's shadow stage: its progress line, then what it found (escaped text)."""
    if not shadows:
        return []
    lines = ["#### Shadow traffic", ""]
    for view in shadows:
        lines.append(
            f"- {code_span(view.model)} ({markdown(view.status)}): "
            + markdown(view.title, max_length=300)
        )
        lines += [f"  - {markdown(r, max_length=500)}" for r in view.reasons[:12]]
    return [*lines, ""]


def _models_gone(ctx: BotContext, repo: str, pull: PullRequest, current: set[str]) -> list[str]:
    """Models evaluated on an earlier head of this PR that the current head no longer touches."""
    with ctx.store.session() as session:
        earlier = session.scalars(
            select(Evaluation.model).where(
                Evaluation.repository == repo,
                Evaluation.pr_number == pull.number,
                Evaluation.head_sha != pull.head.sha,
            )
        )
        return sorted(set(earlier) - current)


def get_pull(client: InstallationClient, repo: str, number: int) -> PullRequest:
    return client.get(f"/repos/{repo}/pulls/{number}", PullRequest)
