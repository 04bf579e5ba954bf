"""Show a canary rollout where people look, and carry out what its end requires.

`show`: the check run `Shipyard / canary (<model>)` on the PR's head and the GitHub Deployment of
the merge commit in `production/<model>` say the same thing (each one convergent outbox effect:
the newest state wins, a status per change). `finish`: a rollback opens a revert PR so Git holds
what production runs; a rollback or pause Shipyard decided pages on-call; a person's /ack or the
model's next successful rollout resolves the page. Each is an outbox effect keyed on the
rollout, so a visit repeated after a crash submits it again and nothing is done twice.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.github.api import InstallationClient
from bot.paging import page_effect
from bot.paging.events import Link, Page
from bot.promotion.check_runs import CheckOutput, publish
from bot.rollout import deployments, revert_pr
from bot.runtime import outbox
from bot.runtime.context import BotContext
from bot.store.models import CanaryRollout, CanaryStatus, EffectStatus
from evaluators.escaping import markdown
from evaluators.policy import Policy

CANARY_CHECK_PREFIX = "Shipyard / canary"

_CONCLUSION = {
    CanaryStatus.PROMOTED.value: "success",
    CanaryStatus.ROLLED_BACK.value: "failure",
    CanaryStatus.STOPPED.value: "cancelled",
}
_DEPLOYMENT_STATE: dict[str, deployments.State] = {
    CanaryStatus.RUNNING.value: "in_progress",
    CanaryStatus.PAUSED.value: "in_progress",
    CanaryStatus.PROMOTED.value: "success",
    CanaryStatus.ROLLED_BACK.value: "failure",
    CanaryStatus.STOPPED.value: "inactive",
}


def canary_check_name(model: str) -> str:
    return f"{CANARY_CHECK_PREFIX} ({model})"


def environment_of(model: str) -> str:
    return f"production/{model}"


def dedup_key(row: CanaryRollout, status: str) -> str:
    """One incident per rollout and outcome: its pause, and its rollback, each page once."""
    return f"shipyard/{row.repository}/{row.model}/{row.merge_sha[:12]}/{status}"


def summary_lines(
    row: CanaryRollout, *, paging_off: bool = False, revert_refused: str = ""
) -> list[str]:
    """What the check run, the report comment and the revert PR show: the state, then the
    metric table of the last analysis."""
    lines = [f"**{markdown(row.model)}**: {markdown(row.title, max_length=500)}"]
    if row.previous_version:
        lines.append(
            f"Canary `{row.version}` against production `{row.previous_version}` "
            "in the same window."
        )
    if row.revert_pr_number:
        lines.append(f"Revert PR: #{row.revert_pr_number} (merge it so Git matches production).")
    if revert_refused:
        lines.append(f"The revert PR could not be opened: {markdown(revert_refused)}")
    ended = row.status in (CanaryStatus.ROLLED_BACK.value, CanaryStatus.PAUSED.value)
    if ended and row.ended_by is None and paging_off:
        lines.append(
            "On-call was not paged: paging is not configured (SHIPYARD_PAGERDUTY_ROUTING_KEY)."
        )
    if row.lines:
        lines += ["", *row.lines]
    return lines


def show(ctx: BotContext, client: InstallationClient, row: CanaryRollout, policy: Policy) -> None:
    conclusion = _CONCLUSION.get(row.status)
    publish(
        client=client,
        store=ctx.store,
        now=ctx.clock.now(),
        repo=row.repository,
        head_sha=row.head_sha,
        name=canary_check_name(row.model),
        status="completed" if conclusion else "in_progress",
        conclusion=conclusion,
        output=CheckOutput(
            title=f"{row.model}: canary {row.title}"[:200],
            summary="\n".join(
                summary_lines(
                    row,
                    paging_off=ctx.settings.pagerduty_routing_key is None,
                    revert_refused=_revert_refused(ctx, row),
                )
            ),
        ),
        external_id=f"canary:{row.model}",
    )
    deployments.show(
        ctx,
        installation_id=row.installation_id,
        repo=row.repository,
        sha=row.merge_sha,
        environment=environment_of(row.model),
        state=_DEPLOYMENT_STATE[row.status],
        description=_deployment_description(row, policy),
        environment_url=ctx.settings.canary_gateway_url or "",
        transient=False,
        production=True,
    )


def _revert_refused(ctx: BotContext, row: CanaryRollout) -> str:
    """GitHub's refusal of the revert PR, as the effect's fixed sentence ("" when none)."""
    if row.status != CanaryStatus.ROLLED_BACK.value:
        return ""
    key = outbox.effect_key(revert_pr.KIND, row.repository, row.merge_sha, row.model)
    state = outbox.state_of(ctx.store, key)
    return state.error_message if state.status is EffectStatus.FAILED else ""


def _deployment_description(row: CanaryRollout, policy: Policy) -> str:
    """One status per step and per outcome (not per analysis: a deployment's history is its
    steps)."""
    steps = policy.canary.steps
    share = f"{steps[min(row.step_index, len(steps) - 1)]}%"
    return {
        CanaryStatus.RUNNING.value: f"Canary answers {share} of production traffic",
        CanaryStatus.PAUSED.value: f"Paused {row.reason or ''}",
        CanaryStatus.PROMOTED.value: "Promoted: answers all production traffic",
        CanaryStatus.ROLLED_BACK.value: f"Rolled back {row.reason or ''}",
        CanaryStatus.STOPPED.value: "Stopped",
    }[row.status]


def finish(ctx: BotContext, row: CanaryRollout, policy: Policy, pr_url: str) -> None:
    """The effects an ended or paused rollout owes (each submitted again harmlessly)."""
    if row.status == CanaryStatus.ROLLED_BACK.value:
        _open_revert(ctx, row, policy)
    automatic = row.ended_by is None
    if row.status in (CanaryStatus.ROLLED_BACK.value, CanaryStatus.PAUSED.value) and automatic:
        _page(ctx, row, pr_url)
    over = row.status in (CanaryStatus.RUNNING.value, CanaryStatus.PROMOTED.value)
    if row.paged and (row.acknowledged_by or over):
        _resolve(ctx, row)  # acknowledged by a person, resumed, or promoted after all
    if row.status == CanaryStatus.PROMOTED.value:
        # The model's next rollout succeeded: earlier incidents about it are over.
        with ctx.store.session() as session:
            earlier = list(
                session.scalars(
                    select(CanaryRollout).where(
                        CanaryRollout.repository == row.repository,
                        CanaryRollout.model == row.model,
                        CanaryRollout.paged.is_(True),
                        CanaryRollout.id != row.id,
                    )
                )
            )
            for other in earlier:
                session.expunge(other)
        for other in earlier:
            _resolve(ctx, other)


def _open_revert(ctx: BotContext, row: CanaryRollout, policy: Policy) -> None:
    title = f"Revert {row.model} to {row.previous_version}: canary of #{row.pr_number} rolled back"
    body = "\n".join(
        [
            f"Shipyard rolled back the canary of #{row.pr_number} in production: "
            + markdown(row.reason or row.title, max_length=600),
            "",
            f"Production runs `{row.previous_version}` again. Merge this pull request so the "
            "registry holds what production runs (a GitOps sync would otherwise deploy the "
            "rolled-back version again).",
            "",
            *(row.lines or []),
        ]
    )
    state = revert_pr.open_revert(
        ctx,
        installation_id=row.installation_id,
        repo=row.repository,
        base_ref=row.base_ref,
        merge_sha=row.merge_sha,
        model_dir=f"{policy.models_root}/{row.model}",
        pr_number=row.pr_number,
        model=row.model,
        title=title,
        body=body,
    )
    number = revert_pr.revert_pr_number(state)
    if number is not None and row.revert_pr_number != number:
        with ctx.store.session() as session:
            live = session.get(CanaryRollout, row.id)
            assert live is not None
            live.revert_pr_number = number
        row.revert_pr_number = number


def _page(ctx: BotContext, row: CanaryRollout, pr_url: str) -> None:
    key = dedup_key(row, row.status)
    asked = page_effect.state(ctx.store, key) is not None
    rolled_back = row.status == CanaryStatus.ROLLED_BACK.value
    what = "Rolled back" if rolled_back else "Paused"
    page = Page(
        dedup_key=key,
        summary=f"{what} {row.model} {row.version}→{row.previous_version} "
        f"{row.reason or row.title}",
        source=f"shipyard/{row.repository}",
        severity="error" if rolled_back else "warning",
        component=row.model,
        group=row.repository,
        event_class=f"canary {row.status}",
        custom_details={
            "model": row.model,
            "canary_version": row.version,
            "production_version": row.previous_version,
            "state": row.status,
            "reason": row.reason or row.title,
            "metrics": list(row.lines or []),
            "pull_request": pr_url,
            "revert_pull_request": row.revert_pr_number,
            "what_now": "Production runs the previous version again; merge the revert PR, then "
            "acknowledge with /ack on the pull request."
            if rolled_back
            else "The canary holds its share of traffic; /resume, /rollback <reason> or "
            "/promote on the pull request, then /ack.",
        },
        links=(Link(href=pr_url, text=f"Pull request #{row.pr_number}"),),
    )
    page_effect.trigger(ctx, ctx.settings, page)
    if not asked:
        # First time: an incident is open, and any earlier acknowledgement was of another one.
        with ctx.store.session() as session:
            live = session.get(CanaryRollout, row.id)
            assert live is not None
            live.paged = True
            live.acknowledged_by = None
        row.paged, row.acknowledged_by = True, None


def _resolve(ctx: BotContext, row: CanaryRollout) -> None:
    for status in (CanaryStatus.PAUSED.value, CanaryStatus.ROLLED_BACK.value):
        key = dedup_key(row, status)
        if page_effect.state(ctx.store, key) is not None:
            page_effect.resolve(ctx, ctx.settings, key)
    with ctx.store.session() as session:
        live = session.get(CanaryRollout, row.id)
        assert live is not None
        live.paged = False
    row.paged = False
