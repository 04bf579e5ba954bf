"""Carry out one command for one person on one PR: the same path for PR comments and Slack."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot import audit
from bot.actor_facts import gather
from bot.authorization import may_approve, may_block, may_retest, may_unblock
from bot.commands.parser import Command
from bot.commands.table import render_help, validate
from bot.context import BotContext
from bot.deadlines import rearm_if_due
from bot.evaluation_queue import enqueue
from bot.gate_decision import decide_gate, pr_fingerprint
from bot.github_api import InstallationClient
from bot.github_types import PullRequest
from bot.promotion_state import active_blocks, load_state
from bot.store.models import Approval, Block, Candidate, CandidateState
from evaluators.policy import Policy


@dataclass(frozen=True)
class Outcome:
    acted: bool  # False: refused or nothing to do
    message: str
    changed_state: bool = False


def execute(
    ctx: BotContext,
    *,
    client: InstallationClient,
    repo: str,
    installation_id: int,
    pull: PullRequest,
    policy: Policy,
    actor: str,
    command: Command,
    source: str,
    surface: str = "github",
) -> Outcome:
    """Authorise, record, and say what was done or why not."""
    name = command.name.value
    usage_error = validate(command)
    if usage_error:
        return Outcome(False, usage_error)
    if name == "help":
        return Outcome(True, render_help(surface=surface))  # type: ignore[arg-type]
    if name == "status":
        return Outcome(True, status_text(ctx, repo=repo, pull=pull, policy=policy))
    if pull.state != "open" and name in ("approve", "retest"):
        return Outcome(False, f"PR #{pull.number} is {pull.state}; nothing to {name}.")

    facts = gather(client, repo=repo, login=actor, author=pull.user.login, review=policy.review)
    now = ctx.clock.now()
    sha = pull.head.sha
    if name == "approve":
        permit = may_approve(facts, policy.review)
        if not permit.allowed:
            return Outcome(False, f"Not approved: {permit.reason}.")
        with ctx.store.session() as session:
            state = load_state(
                session,
                repository=repo,
                pr_number=pull.number,
                head_sha=sha,
                author=pull.user.login,
                review=policy.review,
            )
            fingerprint = pr_fingerprint(state.evaluations)
            if fingerprint is None or any(e.status != "completed" for e in state.evaluations):
                return Outcome(
                    False,
                    f"Nothing to approve yet: the evaluation of `{sha[:7]}` "
                    "has not finished. Approvals bind to its evidence.",
                )
            exists = session.scalar(
                select(Approval).where(
                    Approval.repository == repo,
                    Approval.pr_number == pull.number,
                    Approval.head_sha == sha,
                    Approval.fingerprint == fingerprint,
                    Approval.login == actor,
                )
            )
            if exists is None:
                session.add(
                    Approval(
                        repository=repo,
                        pr_number=pull.number,
                        head_sha=sha,
                        fingerprint=fingerprint,
                        login=actor,
                        note=command.args or None,
                        source=source,
                        at=now,
                    )
                )
            audit.record(
                session,
                at=now,
                repository=repo,
                kind="approved",
                actor=actor,
                pr_number=pull.number,
                head_sha=sha,
                reason=command.args or None,
                detail={"fingerprint": fingerprint, "source": source},
            )
        return Outcome(True, f"Approved `{sha[:7]}` (evidence `{fingerprint[:12]}`).", True)

    if name == "block":
        permit = may_block(facts)
        if not permit.allowed:
            return Outcome(False, f"Not blocked: {permit.reason}.")
        with ctx.store.session() as session:
            session.add(
                Block(
                    repository=repo,
                    pr_number=pull.number,
                    login=actor,
                    reason=command.args,
                    head_sha=sha,
                    source=source,
                    at=now,
                )
            )
            audit.record(
                session,
                at=now,
                repository=repo,
                kind="blocked",
                actor=actor,
                pr_number=pull.number,
                head_sha=sha,
                reason=command.args,
                detail={"source": source},
            )
        return Outcome(
            True, f"Blocked: {command.args}. It stays blocked across pushes until `/unblock`.", True
        )

    if name == "unblock":
        with ctx.store.session() as session:
            blocks = active_blocks(session, repository=repo, pr_number=pull.number)
            if not blocks:
                return Outcome(False, "Nothing to unblock: the PR is not blocked.")
            permit = may_unblock(facts, blockers=[b.login for b in blocks])
            if not permit.allowed:
                return Outcome(False, f"Still blocked: {permit.reason}.")
            lifted = (
                [b for b in blocks if b.login.lower() == actor.lower()]
                if facts.permission != "admin"
                else blocks
            )
            for row in lifted:
                row.lifted_by = actor
                row.lifted_at = now
            if not active_blocks(session, repository=repo, pr_number=pull.number):
                rearm_if_due(session, repository=repo, pr_number=pull.number, head_sha=sha)
            audit.record(
                session,
                at=now,
                repository=repo,
                kind="unblocked",
                actor=actor,
                pr_number=pull.number,
                head_sha=sha,
                reason=f"lifted {len(lifted)} block(s)",
                detail={"source": source},
            )
        return Outcome(True, f"Unblocked ({len(lifted)} block(s) lifted).", True)

    if name == "retest":
        permit = may_retest(facts)
        if not permit.allowed:
            return Outcome(False, f"Not re-run: {permit.reason}.")
        with ctx.store.session() as session:
            models = [
                c.model
                for c in session.scalars(
                    select(Candidate).where(
                        Candidate.repository == repo,
                        Candidate.pr_number == pull.number,
                        Candidate.head_sha == sha,
                        Candidate.state == CandidateState.REGISTERED.value,
                    )
                )
            ]
            queued = [
                m
                for m in models
                if enqueue(
                    session,
                    now=now,
                    repository=repo,
                    installation_id=installation_id,
                    pr_number=pull.number,
                    head_sha=sha,
                    base_sha=pull.base.sha,
                    base_ref=pull.base.ref,
                    model=m,
                )
                is not None
            ]
            audit.record(
                session,
                at=now,
                repository=repo,
                kind="retest",
                actor=actor,
                pr_number=pull.number,
                head_sha=sha,
                reason=f"re-evaluating {', '.join(queued) or 'nothing'}",
                detail={"source": source},
            )
        ctx.wake_evaluations()
        if not queued:
            return Outcome(
                False, f"Nothing to re-run: no registered candidate is idle at `{sha[:7]}`."
            )
        return Outcome(
            True, f"Re-running the evaluation of {', '.join(queued)} at `{sha[:7]}`.", True
        )
    return Outcome(False, f"`/{name}` is not available yet.")


def status_text(ctx: BotContext, *, repo: str, pull: PullRequest, policy: Policy) -> str:
    """The gate, its reasons, and the recent audit trail, as a short Markdown answer."""
    with ctx.store.session() as session:
        state = load_state(
            session,
            repository=repo,
            pr_number=pull.number,
            head_sha=pull.head.sha,
            author=pull.user.login,
            review=policy.review,
        )
        rows = audit.trail(session, repository=repo, pr_number=pull.number)
    decision = decide_gate(state, now=ctx.clock.now())
    lines = [f"**Gate for `{pull.head.sha[:7]}`:** {decision.title}"]
    lines += [f"- {r}" for r in decision.reasons]
    if rows:
        lines += ["", "Recent audit trail:"]
        lines += [
            f"- {r.at:%Y-%m-%d %H:%M} UTC @{r.actor} {r.kind} `{(r.head_sha or '')[:7]}`"
            + (f": {r.reason}" if r.reason else "")
            for r in rows[-10:]
        ]
    return "\n".join(lines)
