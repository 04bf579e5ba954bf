"""Gate 1: on PR open/push, register each touched model dir as a candidate, or say why not."""

from __future__ import annotations

from sqlalchemy import select

from bot import audit, evaluation_queue
from bot.check_names import CANDIDATE_CHECK, candidate_check_name, evaluation_check_name
from bot.check_runs import CheckOutput, publish
from bot.context import BotContext
from bot.deadlines import cancel_for_pr
from bot.events import PullRequestEvent
from bot.github_api import InstallationClient
from bot.pr_refresh import refresh_pr
from bot.registration_gate import (
    Conclusion,
    GateResult,
    evaluate_candidate,
)
from bot.registry_reader import changed_models, list_pull_files, read_model_dir, read_policy
from bot.store.models import Approval, AuditEvent, Candidate, CandidateState
from evaluators.policy import PolicyError

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
    try:
        policy = read_policy(client, repo, pr.base.sha)
    except PolicyError as exc:
        _report_invalid_policy(ctx, event, str(exc))
        return
    models = changed_models(list_pull_files(client, repo, pr.number), policy.models_root)
    _supersede_older_heads(ctx, event)
    for model in models:
        directory = f"{policy.models_root}/{model}"
        found = read_model_dir(client, event.repository, pr.head.sha, directory)
        result = evaluate_candidate(
            model=model,
            files=found.files,
            lfs_paths=set(found.lfs),
            file_errors=found.lfs_errors,
            exists=found.exists,
            directory_problem=found.refused,
        )
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
            _queue_evaluation(ctx, event, client, model)
    if models:
        ctx.wake_evaluations()
    refresh_pr(ctx, client=client, repo=repo, pull=pr, policy=policy)


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
    ctx: BotContext, event: PullRequestEvent, client: InstallationClient, model: str
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
            base_sha=pr.base.sha,
            base_ref=pr.base.ref,
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


def _report_invalid_policy(ctx: BotContext, event: PullRequestEvent, message: str) -> None:
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
            title=".shipyard.yml on the base branch is invalid",
            summary="The promotion policy could not be read, so no candidate can be judged.\n\n"
            f"```\n{message}\n```\n\nFix `.shipyard.yml` on `{pr.base.ref}`.",
        ),
        external_id="policy",
    )
