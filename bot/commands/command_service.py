"""Carry out one command for one person on one PR: the same path for PR comments and Slack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.commands.parser import Command, CommandName
from bot.commands.table import render_help, validate
from bot.github.api import InstallationClient
from bot.github.objects import PullRequest
from bot.github.registry_reader import Production, read_production
from bot.promotion import audit
from bot.promotion.actor_facts import gather
from bot.promotion.authorization import (
    ActorFacts,
    approval_binding,
    may_approve,
    may_block,
    may_retest,
    may_unblock,
)
from bot.promotion.deadlines import rearm_if_due
from bot.promotion.evaluation_queue import enqueue
from bot.promotion.gate_decision import approval_fingerprint, decide_gate
from bot.promotion.promotion_state import active_blocks, state_of_pull
from bot.runtime.context import BotContext
from bot.store.models import Approval, Block, Candidate, CandidateState
from evaluators.escaping import code_span, markdown
from evaluators.policy import Policy

# A Slack button shows the head it acts on and checks it itself; a comment, a review and a
# slash command pass the head their author saw.
ANY_HEAD = "*"

# Commands whose handler needs to know who the actor is (one GitHub lookup per comment).
NEEDS_FACTS = frozenset(
    {CommandName.APPROVE, CommandName.BLOCK, CommandName.UNBLOCK, CommandName.RETEST}
)


@dataclass(frozen=True)
class Outcome:
    acted: bool  # False: refused or nothing to do
    message: str
    changed_state: bool = False


@dataclass(frozen=True)
class _Request:
    """One authorised-to-be-checked command, with everything its handler needs."""

    ctx: BotContext
    repo: str
    installation_id: int
    pull: PullRequest
    policy: Policy
    actor: ActorFacts
    command: Command
    source: str
    now: datetime
    production: Production
    seen_head: str | None

    @property
    def sha(self) -> str:
        return self.pull.head.sha

    def audit(self, session: Session, kind: str, reason: str | None, **detail: object) -> None:
        audit.record(
            session,
            at=self.now,
            repository=self.repo,
            kind=kind,
            actor=self.actor.login,
            pr_number=self.pull.number,
            head_sha=self.sha,
            reason=reason,
            detail={"source": self.source, **detail},
        )


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
    facts: ActorFacts | None = None,
    production: Production | None = None,
    seen_head: str | None = ANY_HEAD,
) -> Outcome:
    """Authorise, record, and say what was done or why not.

    `facts` and `production`, when the caller has them, save GitHub lookups (one per comment,
    not per command); `seen_head` is the head the author could have seen when writing.
    """
    name = command.name
    usage_error = validate(command)
    if usage_error:
        return Outcome(False, usage_error)
    if name is CommandName.HELP:
        return Outcome(True, render_help(surface=surface))  # type: ignore[arg-type]
    if name is CommandName.STATUS:
        return Outcome(True, status_text(ctx, repo=repo, pull=pull, policy=policy))
    if pull.state != "open" and name in (CommandName.APPROVE, CommandName.RETEST):
        return Outcome(False, f"PR #{pull.number} is {pull.state}; nothing to {name.value}.")
    handler = _HANDLERS.get(name)
    if handler is None:
        return Outcome(False, f"`/{name.value}` is not available yet.")
    if facts is None:
        facts = gather(client, repo=repo, login=actor, author=pull.user.login, review=policy.review)
    return handler(
        _Request(
            ctx=ctx,
            repo=repo,
            installation_id=installation_id,
            pull=pull,
            policy=policy,
            actor=facts,
            command=command,
            source=source,
            now=ctx.clock.now(),
            production=production or read_production(client, repo),
            seen_head=seen_head,
        )
    )


def _approve(req: _Request) -> Outcome:
    login, pull, sha = req.actor.login, req.pull, req.sha
    if req.seen_head != ANY_HEAD:
        again = "approve again" if req.source == "slack" else "comment `/approve` again"
        bound = approval_binding(seen_head=req.seen_head, current_head=sha, again=again)
        if not bound.allowed:
            return Outcome(False, f"Not approved: {bound.reason}.")
    with req.ctx.store.session() as session:
        state = state_of_pull(session, repo=req.repo, pull=pull, policy=req.policy)
        changes = state.changes
        if changes is None or not changes.read or state.base_ref != state.production_branch:
            title = decide_gate(state, now=req.now).title
            return Outcome(False, f"Nothing to approve: {title}.")
        permit = may_approve(req.actor, req.policy.review, policy_changed=changes.policy_changed)
        if not permit.allowed:
            return Outcome(False, f"Not approved: {permit.reason}.")
        fingerprint = approval_fingerprint(state)
        if fingerprint is None:
            return Outcome(
                False,
                f"Nothing to approve yet: the evaluation of `{sha[:7]}` "
                "has not finished. Approvals bind to its evidence.",
            )
        exists = session.scalar(
            select(Approval).where(
                Approval.repository == req.repo,
                Approval.pr_number == pull.number,
                Approval.head_sha == sha,
                Approval.fingerprint == fingerprint,
                Approval.login == login,
            )
        )
        if exists is None:
            session.add(
                Approval(
                    repository=req.repo,
                    pr_number=pull.number,
                    head_sha=sha,
                    fingerprint=fingerprint,
                    login=login,
                    note=req.command.args or None,
                    source=req.source,
                    at=req.now,
                )
            )
        req.audit(session, "approved", req.command.args or None, fingerprint=fingerprint)
    return Outcome(True, f"Approved `{sha[:7]}` (evidence `{fingerprint[:12]}`).", True)


def _block(req: _Request) -> Outcome:
    permit = may_block(req.actor)
    if not permit.allowed:
        return Outcome(False, f"Not blocked: {permit.reason}.")
    with req.ctx.store.session() as session:
        session.add(
            Block(
                repository=req.repo,
                pr_number=req.pull.number,
                login=req.actor.login,
                reason=req.command.args,
                head_sha=req.sha,
                source=req.source,
                at=req.now,
            )
        )
        req.audit(session, "blocked", req.command.args)
    return Outcome(
        True,
        f"Blocked: {markdown(req.command.args, max_length=500)}. "
        "It stays blocked across pushes until `/unblock`.",
        True,
    )


def _unblock(req: _Request) -> Outcome:
    number = req.pull.number
    with req.ctx.store.session() as session:
        blocks = active_blocks(session, repository=req.repo, pr_number=number)
        if not blocks:
            return Outcome(False, "Nothing to unblock: the PR is not blocked.")
        permit = may_unblock(req.actor, blockers=[b.login for b in blocks])
        if not permit.allowed:
            return Outcome(False, f"Still blocked: {permit.reason}.")
        # An admin lifts every block; a blocker lifts their own.
        mine = [b for b in blocks if b.login.lower() == req.actor.login.lower()]
        lifted = blocks if req.actor.permission == "admin" else mine
        for row in lifted:
            row.lifted_by = req.actor.login
            row.lifted_at = req.now
        if not active_blocks(session, repository=req.repo, pr_number=number):
            rearm_if_due(session, repository=req.repo, pr_number=number, head_sha=req.sha)
        req.audit(session, "unblocked", f"lifted {len(lifted)} block(s)")
    return Outcome(True, f"Unblocked ({len(lifted)} block(s) lifted).", True)


def _retest(req: _Request) -> Outcome:
    permit = may_retest(req.actor)
    if not permit.allowed:
        return Outcome(False, f"Not re-run: {permit.reason}.")
    pull, sha = req.pull, req.sha
    with req.ctx.store.session() as session:
        models = session.scalars(
            select(Candidate.model).where(
                Candidate.repository == req.repo,
                Candidate.pr_number == pull.number,
                Candidate.head_sha == sha,
                Candidate.state == CandidateState.REGISTERED.value,
            )
        )
        queued = [
            model
            for model in models
            if enqueue(
                session,
                now=req.now,
                repository=req.repo,
                installation_id=req.installation_id,
                pr_number=pull.number,
                head_sha=sha,
                base_sha=req.production.sha,  # re-measured against production as it is now
                base_ref=req.production.branch,
                model=model,
            )
            is not None
        ]
        req.audit(session, "retest", f"re-evaluating {', '.join(queued) or 'nothing'}")
    req.ctx.wake_evaluations()
    if not queued:
        return Outcome(False, f"Nothing to re-run: no registered candidate is idle at `{sha[:7]}`.")
    return Outcome(True, f"Re-running the evaluation of {', '.join(queued)} at `{sha[:7]}`.", True)


_HANDLERS: dict[CommandName, Callable[[_Request], Outcome]] = {
    CommandName.APPROVE: _approve,
    CommandName.BLOCK: _block,
    CommandName.UNBLOCK: _unblock,
    CommandName.RETEST: _retest,
}


def status_text(ctx: BotContext, *, repo: str, pull: PullRequest, policy: Policy) -> str:
    """The gate, its reasons, and the recent audit trail, as a short Markdown answer."""
    with ctx.store.session() as session:
        state = state_of_pull(session, repo=repo, pull=pull, policy=policy)
        rows = audit.trail(session, repository=repo, pr_number=pull.number)
    decision = decide_gate(state, now=ctx.clock.now())
    # Titles, reasons and audit lines carry block reasons, notes and command text: escaped.
    lines = [f"**Gate for `{pull.head.sha[:7]}`:** {markdown(decision.title, max_length=300)}"]
    lines += [f"- {markdown(r, max_length=500)}" for r in decision.reasons]
    lines += [
        f"- Shadow {code_span(v.model)}: {markdown(v.title, max_length=300)}" for v in state.shadows
    ]
    if rows:
        lines += ["", "Recent audit trail:"]
        lines += [
            f"- {r.at:%Y-%m-%d %H:%M} UTC {code_span(r.actor or '')} {markdown(r.kind)} "
            f"`{(r.head_sha or '')[:7]}`"
            + (f": {markdown(r.reason, max_length=300)}" if r.reason else "")
            for r in rows[-10:]
        ]
    return "\n".join(lines)
