"""When a review window ends: re-check everything, then merge pinned to the evaluated SHA."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bot.github.api import GitHubError, InstallationClient
from bot.github.objects import Repository
from bot.github.registry_reader import read_model_dir, read_policy, read_production
from bot.promotion import audit
from bot.promotion.deadlines import arm_once, retry_later, settle
from bot.promotion.evaluation_queue import enqueue
from bot.promotion.gate_decision import GateConclusion, decide_gate
from bot.promotion.pr_refresh import get_pull, refresh_pr
from bot.promotion.promotion_state import CANARY_CHECK, latest_evaluations, state_of_pull
from bot.runtime import outbox
from bot.runtime.context import BotContext
from bot.store.models import Deadline, EffectStatus, Evaluation, MergeRecord, MergeStatus
from evaluators.judgement.fingerprint import tree_sha256_of_files

log = logging.getLogger(__name__)


def merge_when_due(ctx: BotContext, deadline: Deadline) -> None:
    """Act on one claimed review-window deadline, exactly once."""
    try:
        result = _merge(ctx, deadline)
    except GitHubError as exc:
        if exc.status in (0, 429) or exc.status >= 500:
            retry_later(ctx.store, deadline_id=deadline.id, now=ctx.clock.now(), error=str(exc))
            return
        result = f"not merged: {exc}"
    settle(ctx.store, deadline_id=deadline.id, result=result)


def _merge(ctx: BotContext, deadline: Deadline) -> str:
    client = ctx.github.installation(deadline.installation_id)
    repo = deadline.repository
    pull = get_pull(client, repo, deadline.pr_number)
    if pull.merged:
        # GitHub merged it; perhaps we did, and crashed before recording. Reconcile only.
        _record_merge(ctx, deadline, MergeStatus.MERGED, None, "merged (found on recovery)")
        _arm_canary(ctx, deadline)
        refresh_pr(ctx, client=client, repo=repo, pull=pull)
        return "already merged"
    if pull.state != "open":
        return "PR closed"
    if pull.draft:
        return "PR is a draft"
    if pull.head.sha != deadline.head_sha:
        return f"head moved to {pull.head.sha[:7]}; the new head has its own promotion"
    # Policy and production come from the default branch's head, never from the PR's base.
    production = read_production(client, repo)
    if pull.base.ref != production.branch:
        return f"not a promotion: the PR targets {pull.base.ref}, not {production.branch}"
    policy = read_policy(client, repo, production.sha)
    with ctx.store.session() as session:
        evaluations = latest_evaluations(
            session, repository=repo, pr_number=pull.number, head_sha=pull.head.sha
        )
    stale = _production_changed(
        ctx,
        client,
        repo,
        production.sha,
        policy.models_root,
        list(evaluations.values()),
        pull.base.ref,
    )
    if stale:
        # The evidence no longer describes what would ship: say so, and evaluate again.
        with ctx.store.session() as session:
            audit.record(
                session,
                at=ctx.clock.now(),
                repository=repo,
                kind="evidence_stale",
                pr_number=pull.number,
                head_sha=pull.head.sha,
                reason=f"{stale}; approvals no longer count, re-evaluating",
            )
            for evaluation in evaluations.values():
                enqueue(
                    session,
                    now=ctx.clock.now(),
                    repository=repo,
                    installation_id=deadline.installation_id,
                    pr_number=pull.number,
                    head_sha=pull.head.sha,
                    base_sha=production.sha,
                    base_ref=production.branch,
                    model=evaluation.model,
                )
        ctx.wake_evaluations()
        refresh_pr(ctx, client=client, repo=repo, pull=pull, policy=policy)
        return stale
    with ctx.store.session() as session:
        state = state_of_pull(session, repo=repo, pull=pull, policy=policy)
    decision = decide_gate(state, now=ctx.clock.now())
    if decision.conclusion is not GateConclusion.SUCCESS:
        refresh_pr(ctx, client=client, repo=repo, pull=pull, policy=policy)
        return f"gate not success: {decision.title}"
    if policy.dry_run:
        with ctx.store.session() as session:
            audit.record(
                session,
                at=ctx.clock.now(),
                repository=repo,
                kind="merge_dry_run",
                pr_number=pull.number,
                head_sha=pull.head.sha,
                reason="dry_run: would merge now",
            )
        return "dry run"

    _record_merge(ctx, deadline, MergeStatus.ATTEMPTING, None, "merging")
    effect = outbox.submit(
        ctx,
        key=outbox.effect_key("merge", f"{repo}#{pull.number}", deadline.head_sha),
        kind=MERGE,
        payload={
            "repo": repo,
            "pr_number": pull.number,
            "sha": deadline.head_sha,
            "merge_method": policy.review.merge_method.value,
        },
        installation_id=deadline.installation_id,
        retry_failed=True,  # this caller re-checked the gate; a refused merge may be tried again
    )
    if not effect.done:
        status, message = effect.error_status or 0, effect.error_message
        if effect.status is not EffectStatus.FAILED:  # in doubt: the deadline retries later
            raise GitHubError("PUT", "merge", status if status >= 500 else 0, message)
        if status == 409:
            _record_merge(
                ctx, deadline, MergeStatus.STALE, None, f"GitHub refused: head changed ({message})"
            )
        elif status in (405, 422):
            _record_merge(
                ctx, deadline, MergeStatus.REFUSED, None, f"GitHub refused the merge: {message}"
            )
        else:
            raise GitHubError("PUT", "merge", status, message)
        refresh_pr(
            ctx, client=client, repo=repo, pull=get_pull(client, repo, pull.number), policy=policy
        )
        return f"not merged: HTTP {status} {message}"
    _record_merge(
        ctx,
        deadline,
        MergeStatus.MERGED,
        str(effect.result.get("sha")),
        f"merged {deadline.head_sha[:7]} with {policy.review.merge_method.value}",
    )
    _arm_canary(ctx, deadline)
    refresh_pr(
        ctx, client=client, repo=repo, pull=get_pull(client, repo, pull.number), policy=policy
    )
    return "merged"


def _run_merge(attempt: outbox.Attempt) -> dict[str, Any]:
    """PUT the merge pinned to the evaluated SHA; never conclude it failed without asking.

    A 502 or a lost answer may hide a merge that happened, and the retry of a merge that
    happened is refused (405/409). So after any failure, and before a second try, the PR
    is read again: merged at our SHA means merged.
    """
    client = attempt.client()
    repo, number, sha = (attempt.payload[k] for k in ("repo", "pr_number", "sha"))
    if attempt.in_doubt and (found := _merged_at(client, repo, number, sha)):
        return found
    try:
        merged = client.request(
            "PUT",
            f"/repos/{repo}/pulls/{number}/merge",
            json={"sha": sha, "merge_method": attempt.payload["merge_method"]},
        )
    except GitHubError as exc:
        refused_or_unknown = exc.status in (405, 409, 422) or outbox.is_transient(exc)
        if refused_or_unknown and (found := _merged_at(client, repo, number, sha)):
            return found
        raise
    return {"sha": str(merged.get("sha")), "reconciled": False}


def _merged_at(
    client: InstallationClient, repo: str, number: int, sha: str
) -> dict[str, Any] | None:
    pull = get_pull(client, repo, number)
    if pull.merged and pull.head.sha == sha:
        return {"sha": pull.merge_commit_sha, "reconciled": True}
    return None


def _production_changed(
    ctx: BotContext,
    client: InstallationClient,
    repo: str,
    base_sha: str,
    models_root: str,
    evaluations: list[Evaluation],
    base_ref: str,
) -> str | None:
    """The production model moved since evaluation: the evidence is stale."""
    repository = Repository(full_name=repo)  # LFS URL derives from the API host
    for evaluation in evaluations:
        if evaluation.base_ref != base_ref:
            return f"base branch changed from {evaluation.base_ref} to {base_ref}"
        files = read_model_dir(client, repository, base_sha, f"{models_root}/{evaluation.model}")
        now_tree = tree_sha256_of_files(files.files) if files.exists else None
        if now_tree != evaluation.baseline_tree:
            return f"production model {evaluation.model} changed on {base_ref} since evaluation"
    return None


def _arm_canary(ctx: BotContext, deadline: Deadline) -> None:
    """The rollout starts from the merge the bot made, even if GitHub's webhook is lost."""
    if not ctx.settings.canary_enabled:
        return
    with ctx.store.session() as session:
        arm_once(
            session,
            kind=CANARY_CHECK,
            repository=deadline.repository,
            installation_id=deadline.installation_id,
            pr_number=deadline.pr_number,
            head_sha=deadline.head_sha,
            due_at=ctx.clock.now(),
        )


def _record_merge(
    ctx: BotContext, deadline: Deadline, status: MergeStatus, merge_sha: str | None, message: str
) -> None:
    now = ctx.clock.now()
    with ctx.store.session() as session:
        row = session.scalar(
            select(MergeRecord).where(
                MergeRecord.repository == deadline.repository,
                MergeRecord.pr_number == deadline.pr_number,
                MergeRecord.head_sha == deadline.head_sha,
            )
        )
        if row is None:
            row = MergeRecord(
                repository=deadline.repository,
                pr_number=deadline.pr_number,
                head_sha=deadline.head_sha,
                at=now,
            )
            session.add(row)
        elif row.status == MergeStatus.MERGED.value:
            return  # recorded once; never audit a merge twice
        row.status = status.value
        row.merge_sha = merge_sha or row.merge_sha
        row.message = message
        row.at = now
        if status is not MergeStatus.ATTEMPTING:
            audit.record(
                session,
                at=now,
                repository=deadline.repository,
                kind=f"merge_{status.value}",
                pr_number=deadline.pr_number,
                head_sha=deadline.head_sha,
                reason=message,
                detail={"merge_sha": merge_sha},
            )


MERGE = "merge"
# The merge is retried by its deadline, which re-checks the gate first, never by the tick.
outbox.register(MERGE, _run_merge, background_retry=False)
