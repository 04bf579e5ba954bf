"""Carry out one command for one person on one PR: the same path for PR comments and Slack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.commands.parser import Command, CommandName
from bot.commands.table import Stage, render_help, spec_for, validate
from bot.github.api import InstallationClient
from bot.github.objects import PullRequest
from bot.github.registry_reader import Production, read_production
from bot.monitoring.status import monitors_of_pull
from bot.promotion import audit
from bot.promotion.actor_facts import gather
from bot.promotion.authorization import (
    ActorFacts,
    Permit,
    approval_binding,
    may_acknowledge,
    may_approve,
    may_block,
    may_promote,
    may_resume_canary,
    may_retest,
    may_stop_canary,
    may_unblock,
)
from bot.promotion.deadlines import rearm_if_due
from bot.promotion.evaluation_queue import enqueue
from bot.promotion.gate_decision import approval_fingerprint, decide_gate
from bot.promotion.promotion_state import active_blocks, state_of_pull
from bot.rollout.canary_requests import (
    CanaryAction,
    Requested,
    RolloutSeen,
    request,
    rollouts_of,
)
from bot.runtime.context import BotContext
from bot.store.models import Approval, Block, Candidate, CandidateState, MonitorStatus
from evaluators.escaping import code_span, markdown
from evaluators.policy import Policy

# A Slack button shows the head it acts on and checks it itself; a comment, a review and a
# slash command pass the head their author saw.
ANY_HEAD = "*"

# The canary commands, and what each asks of the rollout.
CANARY_ACTIONS: dict[CommandName, CanaryAction] = {
    CommandName.ROLLBACK: CanaryAction.ROLLBACK,
    CommandName.PAUSE: CanaryAction.PAUSE,
    CommandName.RESUME: CanaryAction.RESUME,
    CommandName.PROMOTE: CanaryAction.PROMOTE,
    CommandName.ACK: CanaryAction.ACKNOWLEDGE,
}

# Commands whose handler needs to know who the actor is (one GitHub lookup per comment).
NEEDS_FACTS = frozenset(
    {CommandName.APPROVE, CommandName.BLOCK, CommandName.UNBLOCK, CommandName.RETEST}
    | CANARY_ACTIONS.keys()
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
    wrong_stage = _wrong_stage(pull, name)
    if wrong_stage:
        return Outcome(False, wrong_stage)
    handler = _HANDLERS.get(name)
    if handler is None:
        return Outcome(False, f"`/{name.value}` is not available yet.")
    if facts is None:
        facts = gather(
            client,
            repo=repo,
            login=actor,
            author=pull.user.login,
            review=policy.review,
            also=policy.canary.promote_approvers,
        )
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


def _wrong_stage(pull: PullRequest, name: CommandName) -> str | None:
    """Why `name` does not apply to `pull` as it is now (open, closed, merged), or None."""
    stage = spec_for(name).stage
    if stage is Stage.REVIEW and pull.state != "open":
        return f"PR #{pull.number} is {pull.state}; nothing to {name.value}."
    if stage is Stage.CANARY and not pull.merged:  # unknown (None) is not merged: fail closed
        if pull.state == "open":
            return (
                f"PR #{pull.number} is not merged yet: `/{name.value}` acts on the canary "
                "rollout that starts after the merge."
            )
        return f"PR #{pull.number} was closed without merging: it has no canary to {name.value}."
    return None


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


def _canary(req: _Request) -> Outcome:
    """Record what a person asks of a merged PR's canary; the rollout's next visit does it."""
    action = CANARY_ACTIONS[req.command.name]
    permit = _canary_permit(req, action)
    if not permit.allowed:
        return Outcome(False, f"Not done: {permit.reason}.")
    reason = req.command.args or None
    with req.ctx.store.session() as session:
        requested = request(
            session,
            repository=req.repo,
            pr_number=req.pull.number,
            action=action,
            actor=req.actor.login,
            reason=reason,
            now=req.now,
        )
        if requested.models or requested.withdrawn:
            req.audit(
                session,
                f"canary_{action.value}_requested",
                reason,
                models=list(requested.models or requested.withdrawn),
            )
    if requested.withdrawn and not requested.models:
        return Outcome(
            True,
            f"Not pausing {_models(requested.withdrawn)}: the pause asked for is withdrawn "
            "before it took effect.",
        )
    if not requested.models:
        return Outcome(False, _nothing_to_do(action, req.pull.number, requested))
    message = _will_do(action, requested.models, reason)
    if requested.withdrawn:
        message += f" The pause asked for {_models(requested.withdrawn)} is withdrawn."
    return Outcome(True, message)


def _canary_permit(req: _Request, action: CanaryAction) -> Permit:
    if action in (CanaryAction.ROLLBACK, CanaryAction.PAUSE):
        return may_stop_canary(req.actor)
    if action is CanaryAction.RESUME:
        return may_resume_canary(req.actor)
    if action is CanaryAction.ACKNOWLEDGE:
        return may_acknowledge(req.actor)
    return may_promote(req.actor, req.policy.canary, req.policy.review)


_AT_NEXT_CHECK = "at the next check (within a minute)"


def _will_do(action: CanaryAction, models: tuple[str, ...], reason: str | None) -> str:
    """What was asked and when it takes effect; the reason as written, escaped."""
    which = _models(models)
    why = f": {markdown(reason, max_length=500)}" if reason else ""
    if action is CanaryAction.ROLLBACK:
        return f"Rolling back {which} {_AT_NEXT_CHECK}{why}."
    if action is CanaryAction.PAUSE:
        return f"Pausing {which} {_AT_NEXT_CHECK}; `/resume` lets it go on{why}."
    if action is CanaryAction.RESUME:
        return f"Resuming {which} {_AT_NEXT_CHECK}."
    if action is CanaryAction.PROMOTE:
        return f"Promoting {which} to all traffic {_AT_NEXT_CHECK}, skipping its steps{why}."
    return f"Acknowledged: the page for {which} is resolved {_AT_NEXT_CHECK}{why}."


def _nothing_to_do(action: CanaryAction, pr_number: int, requested: Requested) -> str:
    """A refusal naming each model's canary status, so the person sees why."""
    if not requested.rollouts:
        return f"No canary has started for PR #{pr_number}."
    shown = "; ".join(_seen(r) for r in requested.rollouts)
    if any(r.requested_action == CanaryAction.ROLLBACK.value for r in requested.rollouts):
        return f"A rollback of PR #{pr_number} is already asked for and stands ({shown})."
    if action is CanaryAction.RESUME:
        return f"No canary is paused for PR #{pr_number} ({shown})."
    if action is CanaryAction.ACKNOWLEDGE and any(r.paged for r in requested.rollouts):
        return (
            f"Not acknowledged for PR #{pr_number}: a request is pending, and the rollout "
            f"carries it out first; acknowledge after that ({shown})."
        )
    if action is CanaryAction.ACKNOWLEDGE:
        return f"Nothing to acknowledge for PR #{pr_number}: no page is open ({shown})."
    return f"No canary is running for PR #{pr_number} ({shown})."


def _seen(rollout: RolloutSeen) -> str:
    text = f"{code_span(rollout.model)}: {markdown(rollout.status.replace('_', ' '))}"
    if rollout.paged:
        text += ", on-call paged"
    if rollout.requested_action:
        text += f", {rollout.requested_action} asked by {code_span(rollout.requested_by or '?')}"
    return text


def _models(models: tuple[str, ...]) -> str:
    return ", ".join(code_span(m) for m in models)


_HANDLERS: dict[CommandName, Callable[[_Request], Outcome]] = {
    CommandName.APPROVE: _approve,
    CommandName.BLOCK: _block,
    CommandName.UNBLOCK: _unblock,
    CommandName.RETEST: _retest,
    **dict.fromkeys(CANARY_ACTIONS, _canary),
}


def status_text(ctx: BotContext, *, repo: str, pull: PullRequest, policy: Policy) -> str:
    """The gate, its reasons, and the recent audit trail, as a short Markdown answer."""
    with ctx.store.session() as session:
        state = state_of_pull(session, repo=repo, pull=pull, policy=policy)
        rows = audit.trail(session, repository=repo, pr_number=pull.number)
        canaries = rollouts_of(session, repository=repo, pr_number=pull.number)
        monitors = monitors_of_pull(session, repository=repo, pr_number=pull.number)
    decision = decide_gate(state, now=ctx.clock.now())
    # Titles, reasons and audit lines carry block reasons, notes and command text: escaped.
    lines = [f"**Gate for `{pull.head.sha[:7]}`:** {markdown(decision.title, max_length=300)}"]
    lines += [f"- {markdown(r, max_length=500)}" for r in decision.reasons]
    lines += [
        f"- Shadow {code_span(v.model)}: {markdown(v.title, max_length=300)}" for v in state.shadows
    ]
    lines += [
        f"- Canary {_seen(c)}" + (f" — {markdown(c.title, max_length=300)}" if c.title else "")
        for c in canaries
    ]
    lines += [
        f"- Production {markdown(m.summary(), max_length=500)}"
        for m in monitors
        if m.status == MonitorStatus.WATCHING.value
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
