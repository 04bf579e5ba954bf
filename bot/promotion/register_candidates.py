"""Gate 1: on PR open/push, register each touched model dir as a candidate, or say why not."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from bot.github.api import InstallationClient
from bot.github.branch_names import revert_branch
from bot.github.check_names import CANDIDATE_CHECK, candidate_check_name, evaluation_check_name
from bot.github.events import PullRequestEvent
from bot.github.objects import PullRequest
from bot.github.registry_reader import (
    Production,
    PullChanges,
    first_parent,
    read_changes,
    read_model_dir,
    read_policy,
    read_production,
    subtree_sha,
)
from bot.promotion import audit, evaluation_queue
from bot.promotion.check_runs import CheckOutput, publish
from bot.promotion.deadlines import cancel_for_pr
from bot.promotion.pr_refresh import refresh_pr
from bot.promotion.promotion_state import head_record
from bot.promotion.registration_gate import (
    Conclusion,
    GateResult,
    evaluate_candidate,
)
from bot.runtime.context import BotContext
from bot.store.models import (
    Approval,
    AuditEvent,
    CanaryRollout,
    CanaryStatus,
    Candidate,
    CandidateState,
    PrHead,
)
from evaluators.policy import Policy, PolicyError, parse_policy

log = logging.getLogger(__name__)

# Shown instead of an exception's text, which may quote the author's files or the bot's insides.
UNCHECKABLE = (
    "Shipyard could not check this model directory, so it cannot be promoted: its files may be "
    "malformed, too deeply nested or too large. Fix them and push again."
)

ACTIONS = frozenset({"opened", "reopened", "synchronize", "ready_for_review", "edited"})


def register_candidates(ctx: BotContext, event: PullRequestEvent) -> None:
    """Run the registration gate for every model directory the PR's head touches."""
    if event.action not in ACTIONS or event.pull_request.state != "open":
        return
    if event.action == "edited":
        if "base" not in (event.changes or {}):
            return  # a title or body edit changes no evidence
        with ctx.store.session() as session:
            audit.record(
                session,
                at=ctx.clock.now(),
                repository=event.repository.full_name,
                kind="base_changed",
                actor=event.sender.login,
                pr_number=event.pull_request.number,
                head_sha=event.pull_request.head.sha,
                reason=f"retargeted to {event.pull_request.base.ref}: evaluating again; "
                "earlier approvals no longer count",
            )
    pr = event.pull_request
    repo = event.repository.full_name
    client = ctx.github.installation(event.installation.id)
    # Policy, approvers and the baseline come from the default branch's head, asked of GitHub:
    # a PR into a branch its author prepared must not bring its own gate.
    production = read_production(client, repo)
    _record_head(ctx, event, production)
    _supersede_older_heads(ctx, event)
    if pr.base.ref != production.branch:
        policy = _policy_or_defaults(client, repo, production)
        refresh_pr(ctx, client=client, repo=repo, pull=pr, policy=policy, production=production)
        return  # not a promotion: nothing the PR names is read or evaluated
    try:
        policy = read_policy(client, repo, production.sha)
    except PolicyError as exc:
        _report_invalid_policy(ctx, event, str(exc), production.branch)
        return
    # Every touched model is recorded before any is processed: the gate waits for each one.
    changes = read_changes(client, repo, pr, policy.models_root)
    _record_changes(ctx, event, changes)
    restored = restored_models(ctx, client, repo, pr, policy)
    for model in changes.models:
        if model in restored:
            continue  # Shipyard's own revert after a rollback: the gate says so, nothing to test
        result = _register_one(ctx, event, client, policy, model)
        _store_result(ctx, event, result)
        publish(
            client=client,
            store=ctx.store,
            now=ctx.clock.now(),
            repo=repo,
            head_sha=pr.head.sha,
            name=candidate_check_name(model),
            status="completed",
            conclusion=result.conclusion.value,
            output=CheckOutput(title=result.title, summary=result.summary()),
            external_id=f"candidate:{model}",
        )
        if result.conclusion is Conclusion.SUCCESS:
            _queue_evaluation(ctx, event, client, model, production)
    if changes.models:
        ctx.wake_evaluations()
    refresh_pr(ctx, client=client, repo=repo, pull=pr, policy=policy, production=production)


def restored_models(
    ctx: BotContext,
    client: InstallationClient,
    repo: str,
    pr: PullRequest,
    policy: Policy,
) -> set[str]:
    """Models this PR puts back exactly as production runs them after a rollback.

    Only a revert PR Shipyard itself opened (GitHub names the App as its author; its branch is
    the one the rolled-back rollout's revert uses) whose head holds the model directory exactly
    as it was before the rolled-back merge (same tree) qualifies. Each verified head is recorded
    on the row and the gate trusts only that record: a push of anything else to the branch makes
    the model a candidate again.
    """
    if pr.user is None or pr.user.login != ctx.github.bot_login():
        return set()
    with ctx.store.session() as session:
        rows = [
            row
            for row in session.scalars(
                select(CanaryRollout).where(
                    CanaryRollout.repository == repo,
                    CanaryRollout.status == CanaryStatus.ROLLED_BACK.value,
                )
            )
            if revert_branch(row.pr_number, row.model) == pr.head.ref
        ]
        for row in rows:
            session.expunge(row)
    restored: set[str] = set()
    for row in rows:
        directory = f"{policy.models_root}/{row.model}"
        previous = first_parent(client, repo, row.merge_sha)
        wanted = subtree_sha(client, repo, previous, directory) if previous else None
        if wanted is None or subtree_sha(client, repo, pr.head.sha, directory) != wanted:
            continue
        restored.add(row.model)
        with ctx.store.session() as session:
            live = session.get(CanaryRollout, row.id)
            assert live is not None
            live.revert_head_sha = pr.head.sha
            live.revert_pr_number = pr.number
    return restored


def _register_one(
    ctx: BotContext,
    event: PullRequestEvent,
    client: InstallationClient,
    policy: Policy,
    model: str,
) -> GateResult:
    """The registration gate for one model; any exception is a failing candidate (fail closed)."""
    try:
        found = read_model_dir(
            client, event.repository, event.pull_request.head.sha, f"{policy.models_root}/{model}"
        )
        return evaluate_candidate(
            model=model,
            files=found.files,
            lfs_paths=set(found.lfs),
            file_errors=found.lfs_errors,
            exists=found.exists,
            directory_problem=found.refused,
            classify=ctx.auditor.classify,
        )
    except Exception as exc:  # whatever broke, this model must not pass
        log.warning("registering %s failed: %s", model, type(exc).__name__)
        return GateResult(
            model=model,
            conclusion=Conclusion.FAILURE,
            title=f"{model}: could not be checked",
            problems=[UNCHECKABLE],
        )


def _policy_or_defaults(client: InstallationClient, repo: str, production: Production) -> Policy:
    try:
        return read_policy(client, repo, production.sha)
    except PolicyError:
        return parse_policy(None)


def _became_head_at(event: PullRequestEvent, now: datetime) -> datetime:
    """When this head became the head, never earlier than it did (GitHub's stamp, else now)."""
    pr = event.pull_request
    stamp = pr.created_at if event.action == "opened" else pr.updated_at
    return stamp if stamp is not None else now


def _record_head(ctx: BotContext, event: PullRequestEvent, production: Production) -> None:
    """Remember this head, since when it is the head, and where the PR is going."""
    pr = event.pull_request
    repo = event.repository.full_name
    since = _became_head_at(event, ctx.clock.now())
    with ctx.store.session() as session:
        row = head_record(session, repository=repo, pr_number=pr.number, head_sha=pr.head.sha)
        if row is None:
            session.add(
                PrHead(
                    repository=repo,
                    pr_number=pr.number,
                    head_sha=pr.head.sha,
                    since=since,
                    base_ref=pr.base.ref,
                    production_branch=production.branch,
                    production_sha=production.sha,
                    paths_read=False,
                    outside_count=0,
                    policy_changed=False,
                )
            )
            return
        if event.action == "synchronize" and since > row.since:
            row.since = since  # pushed back to an older commit: it is the head again from now
        row.base_ref = pr.base.ref
        row.production_branch = production.branch
        row.production_sha = production.sha


def _record_changes(ctx: BotContext, event: PullRequestEvent, changes: PullChanges) -> None:
    pr = event.pull_request
    with ctx.store.session() as session:
        row = head_record(
            session,
            repository=event.repository.full_name,
            pr_number=pr.number,
            head_sha=pr.head.sha,
        )
        assert row is not None  # recorded by _record_head in this same handling
        row.paths_read = changes.complete
        row.paths_problem = changes.problem or None
        row.models = list(changes.models)
        row.outside_paths = list(changes.outside)
        row.outside_count = changes.outside_count
        row.policy_changed = changes.policy_changed


def _store_result(ctx: BotContext, event: PullRequestEvent, result: GateResult) -> None:
    pr = event.pull_request
    repo = event.repository.full_name
    now = ctx.clock.now()
    state = (
        CandidateState.REGISTERED
        if result.conclusion is Conclusion.SUCCESS
        else CandidateState.REJECTED
    )
    with ctx.store.session() as session:
        row = session.scalar(
            select(Candidate).where(
                Candidate.repository == repo,
                Candidate.pr_number == pr.number,
                Candidate.head_sha == pr.head.sha,
                Candidate.model == result.model,
            )
        )
        if row is None:
            row = Candidate(
                repository=repo,
                installation_id=event.installation.id,
                pr_number=pr.number,
                head_sha=pr.head.sha,
                model=result.model,
                created_at=now,
            )
            session.add(row)
        row.base_sha = pr.base.sha
        row.base_ref = pr.base.ref
        row.state = state.value
        row.conclusion = result.conclusion.value
        row.summary = result.summary()
        row.updated_at = now
        audit.record(
            session,
            at=now,
            repository=repo,
            kind=f"candidate_{state.value}",
            pr_number=pr.number,
            head_sha=pr.head.sha,
            model=result.model,
            reason=result.title,
            detail={"problems": list(result.problems)},
        )


def _queue_evaluation(
    ctx: BotContext,
    event: PullRequestEvent,
    client: InstallationClient,
    model: str,
    production: Production,
) -> None:
    """Show the evaluation as queued on the head SHA, then queue it (workers start it)."""
    pr = event.pull_request
    publish(
        client=client,
        store=ctx.store,
        now=ctx.clock.now(),
        repo=event.repository.full_name,
        head_sha=pr.head.sha,
        name=evaluation_check_name(model),
        status="queued",
        output=CheckOutput(
            title=f"{model}: waiting for an evaluation worker",
            summary="Queued: candidate vs production on the pinned benchmark.",
        ),
        external_id=f"evaluation:{model}",
    )
    with ctx.store.session() as session:
        evaluation_queue.enqueue(
            session,
            now=ctx.clock.now(),
            repository=event.repository.full_name,
            installation_id=event.installation.id,
            pr_number=pr.number,
            head_sha=pr.head.sha,
            base_sha=production.sha,  # the baseline: production as it is now, not the PR's base
            base_ref=production.branch,
            model=model,
        )


def _supersede_older_heads(ctx: BotContext, event: PullRequestEvent) -> None:
    """A new head starts a new promotion: older runs, windows and approvals stop counting."""
    pr = event.pull_request
    repo = event.repository.full_name
    with ctx.store.session() as session:
        cancelled = evaluation_queue.cancel_superseded(
            session, repository=repo, pr_number=pr.number, head_sha=pr.head.sha
        )
        windows = cancel_for_pr(
            session, repository=repo, pr_number=pr.number, except_head=pr.head.sha
        )
        stale = sorted(
            {
                a.login
                for a in session.scalars(
                    select(Approval).where(
                        Approval.repository == repo,
                        Approval.pr_number == pr.number,
                        Approval.head_sha != pr.head.sha,
                    )
                )
            }
        )
        already = session.scalar(
            select(AuditEvent).where(
                AuditEvent.repository == repo,
                AuditEvent.pr_number == pr.number,
                AuditEvent.head_sha == pr.head.sha,
                AuditEvent.kind == "new_head",
            )
        )
        if already is not None:
            return
        audit.record(
            session,
            at=ctx.clock.now(),
            repository=repo,
            kind="new_head",
            pr_number=pr.number,
            head_sha=pr.head.sha,
            actor=event.sender.login,
            reason=f"{event.action}: {cancelled} evaluation(s) and {windows} review window(s) "
            f"of older commits cancelled; approvals by {', '.join(stale) or 'nobody'} are stale",
        )


def _report_invalid_policy(
    ctx: BotContext, event: PullRequestEvent, message: str, branch: str
) -> None:
    pr = event.pull_request
    repo = event.repository.full_name
    with ctx.store.session() as session:
        audit.record(
            session,
            at=ctx.clock.now(),
            repository=repo,
            kind="policy_invalid",
            pr_number=pr.number,
            head_sha=pr.head.sha,
            reason=message,
        )
    publish(
        client=ctx.github.installation(event.installation.id),
        store=ctx.store,
        now=ctx.clock.now(),
        repo=repo,
        head_sha=pr.head.sha,
        name=CANDIDATE_CHECK,
        status="completed",
        conclusion=Conclusion.FAILURE.value,
        output=CheckOutput(
            title=".shipyard.yml on the default branch is invalid",
            summary="The promotion policy could not be read, so no candidate can be judged.\n\n"
            f"```\n{message}\n```\n\nFix `.shipyard.yml` on `{branch}`.",
        ),
        external_id="policy",
    )
