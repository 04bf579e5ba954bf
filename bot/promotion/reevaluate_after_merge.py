"""When a PR merges, production changed: other open candidates for those models start again."""

from __future__ import annotations

from sqlalchemy import select

from bot.github.events import PullRequestEvent
from bot.github.registry_reader import read_production
from bot.promotion import audit
from bot.promotion.evaluation_queue import enqueue
from bot.promotion.pr_refresh import get_pull, refresh_pr
from bot.runtime.context import BotContext
from bot.store.models import Candidate, CandidateState


def reevaluate_after_merge(ctx: BotContext, event: PullRequestEvent) -> None:
    """Evidence measured against the old production model no longer holds; say so and redo it."""
    merged = event.pull_request
    if event.action != "closed" or not merged.merged:
        return
    repo = event.repository.full_name
    with ctx.store.session() as session:
        models = {
            c.model
            for c in session.scalars(
                select(Candidate).where(
                    Candidate.repository == repo, Candidate.pr_number == merged.number
                )
            )
        }
        others = sorted(
            {
                c.pr_number
                for c in session.scalars(
                    select(Candidate).where(
                        Candidate.repository == repo,
                        Candidate.pr_number != merged.number,
                        Candidate.model.in_(models),
                        Candidate.state == CandidateState.REGISTERED.value,
                    )
                )
            }
        )
    if not others:
        return
    client = ctx.github.installation(event.installation.id)
    production = read_production(client, repo)
    if merged.base.ref != production.branch:
        return  # production lives on the default branch; a merge elsewhere changes nothing
    for number in others:
        pull = get_pull(client, repo, number)
        if pull.state != "open" or pull.base.ref != production.branch:
            continue
        now = ctx.clock.now()
        with ctx.store.session() as session:
            touched = [
                c.model
                for c in session.scalars(
                    select(Candidate).where(
                        Candidate.repository == repo,
                        Candidate.pr_number == number,
                        Candidate.head_sha == pull.head.sha,
                        Candidate.model.in_(models),
                        Candidate.state == CandidateState.REGISTERED.value,
                    )
                )
            ]
            queued = [
                m
                for m in touched
                if enqueue(
                    session,
                    now=now,
                    repository=repo,
                    installation_id=event.installation.id,
                    pr_number=number,
                    head_sha=pull.head.sha,
                    base_sha=production.sha,
                    base_ref=production.branch,
                    model=m,
                )
                is not None
            ]
            if queued:
                audit.record(
                    session,
                    at=now,
                    repository=repo,
                    kind="evidence_stale",
                    pr_number=number,
                    head_sha=pull.head.sha,
                    reason=f"production {', '.join(queued)} changed when #{merged.number} merged; "
                    "approvals no longer count; re-evaluating against the new production model",
                )
        if queued:
            ctx.wake_evaluations()
            refresh_pr(ctx, client=client, repo=repo, pull=pull)
