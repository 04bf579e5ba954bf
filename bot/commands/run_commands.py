"""Commands in PR comments and reviews: parse, authorise, act, answer, refresh the gate."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ValidationError
from sqlalchemy import select

from bot.commands.command_service import NEEDS_FACTS, Outcome, execute
from bot.commands.comment_event import (
    CommentEvent,
    from_issue_comment,
    from_pull_request_review,
    from_review_comment,
    should_ignore,
)
from bot.commands.parser import parse_commands
from bot.github.registry_reader import read_policy, read_production
from bot.promotion import audit
from bot.promotion.actor_facts import gather
from bot.promotion.pr_refresh import get_pull, refresh_pr
from bot.promotion.promotion_state import head_seen_by
from bot.runtime.context import BotContext
from bot.runtime.outbox_replies import post_reply, react
from bot.store.models import CommandReceipt
from evaluators.escaping import code_span, markdown_to_plain

log = logging.getLogger(__name__)

# A comment is one person's few decisions; more lines are noise or a flood, answered once.
MAX_COMMANDS_PER_COMMENT = 5


class _Stamp(BaseModel):
    created_at: AwareDatetime


class _CommentStamp(BaseModel):
    comment: _Stamp


class _ReviewCommit(BaseModel):
    commit_id: str


class _ReviewStamp(BaseModel):
    review: _ReviewCommit


def run_comment_commands(ctx: BotContext, payload: dict[str, Any]) -> None:
    """issue_comment: act on the commands a person wrote in a PR conversation."""
    try:
        event = from_issue_comment(payload, received_at=ctx.clock.now())
    except ValidationError:
        return  # not a shape we act on; acknowledged, no side effect
    if event is None:
        return
    try:
        written_at: datetime | None = _CommentStamp.model_validate(payload).comment.created_at
    except ValidationError:
        written_at = None  # unknown: no approval can be bound to a head
    _run(ctx, event, written_at=written_at)


def run_review_commands(ctx: BotContext, payload: dict[str, Any]) -> None:
    """pull_request_review: a review body may carry the same commands."""
    try:
        event = from_pull_request_review(payload, received_at=ctx.clock.now())
    except ValidationError:
        return
    try:
        commit: str | None = _ReviewStamp.model_validate(payload).review.commit_id
    except ValidationError:
        commit = None
    _run(ctx, event, review_commit=commit)


def run_review_comment_commands(ctx: BotContext, payload: dict[str, Any]) -> None:
    """pull_request_review_comment: a comment on a line of the diff may carry them too."""
    try:
        event = from_review_comment(payload, received_at=ctx.clock.now())
    except ValidationError:
        return
    try:
        written_at: datetime | None = _CommentStamp.model_validate(payload).comment.created_at
    except ValidationError:
        written_at = None
    _run(ctx, event, written_at=written_at)


def _run(
    ctx: BotContext,
    event: CommentEvent,
    *,
    written_at: datetime | None = None,
    review_commit: str | None = None,
) -> None:
    if event.installation_id is None:
        return
    if should_ignore(event, bot_login=ctx.github.bot_login()) is not None:
        return
    commands = parse_commands(event.body)
    if not commands:
        return
    counted, ignored = commands[:MAX_COMMANDS_PER_COMMENT], commands[MAX_COMMANDS_PER_COMMENT:]
    client = ctx.github.installation(event.installation_id)
    repo = event.repository
    pull = get_pull(client, repo, event.pr_number)
    production = read_production(client, repo)
    policy = read_policy(client, repo, production.sha)
    seen_head = review_commit or _head_seen(ctx, repo, event.pr_number, written_at)
    facts = None
    changed = False
    answers: list[str] = []
    all_ok = True
    for command in counted:
        key = f"{event.source.value}:{event.comment_id}:{command.line}"
        done = _already_done(ctx, repo, event.pr_number, key)
        if done is not None:
            # A redelivered event after a crash: the command already ran. Its answer is
            # part of the reply, which the outbox posts at most once.
            answers.append(done)
            continue
        if facts is None and command.name in NEEDS_FACTS:
            # Who the actor is, asked once per comment however many commands it holds.
            facts = gather(
                client,
                repo=repo,
                login=event.author,
                author=pull.user.login,
                review=policy.review,
                also=policy.canary.promote_approvers,
            )
        outcome = execute(
            ctx,
            client=client,
            repo=repo,
            installation_id=event.installation_id,
            pull=pull,
            policy=policy,
            actor=event.author,
            command=command,
            source="github",
            facts=facts,
            production=production,
            seen_head=seen_head,
        )
        answer = f"{code_span(command.raw, max_length=300)} — {outcome.message}"
        _remember(ctx, repo, event, command.raw, key, outcome, pull.head.sha, answer)
        changed |= outcome.changed_state
        all_ok &= outcome.acted
        answers.append(answer)
    if not answers:
        return
    if ignored:
        all_ok = False
        answers.append(
            f"{len(ignored)} more command line{'s' if len(ignored) != 1 else ''} in this comment "
            f"{'were' if len(ignored) != 1 else 'was'} ignored: at most "
            f"{MAX_COMMANDS_PER_COMMENT} commands count per comment."
        )
    if changed:  # the gate first, so the answer never describes a state not yet shown
        refresh_pr(
            ctx,
            client=client,
            repo=repo,
            pull=get_pull(client, repo, pull.number),
            policy=policy,
            production=production,
        )
    _answer(ctx, repo, event, answers, all_ok)


def _head_seen(
    ctx: BotContext, repo: str, pr_number: int, written_at: datetime | None
) -> str | None:
    """The head the comment's author could have seen: the one recorded as head when they wrote."""
    with ctx.store.session() as session:
        return head_seen_by(session, repository=repo, pr_number=pr_number, at=written_at)


def _already_done(ctx: BotContext, repo: str, pr_number: int, key: str) -> str | None:
    """The answer given when this command ran (an indexed lookup), or None if it has not run."""
    with ctx.store.session() as session:
        row = session.scalar(
            select(CommandReceipt).where(
                CommandReceipt.repository == repo,
                CommandReceipt.pr_number == pr_number,
                CommandReceipt.key == key[:200],
            )
        )
        return None if row is None else (row.answer or "")


def _remember(
    ctx: BotContext,
    repo: str,
    event: CommentEvent,
    raw: str,
    key: str,
    outcome: Outcome,
    sha: str,
    answer: str,
) -> None:
    now = ctx.clock.now()
    with ctx.store.session() as session:
        session.add(
            CommandReceipt(
                repository=repo,
                pr_number=event.pr_number,
                key=key[:200],
                at=now,
                answer=answer[:4000],
            )
        )
        audit.record(
            session,
            at=now,
            repository=repo,
            kind="command",
            actor=event.author,
            pr_number=event.pr_number,
            head_sha=sha,
            reason=f"{raw.strip()} → {markdown_to_plain(outcome.message)}"[:1000],
            detail={
                "key": key,
                "acted": outcome.acted,
                "url": event.html_url,
                "answer": answer[:4000],
            },
        )


def _answer(ctx: BotContext, repo: str, event: CommentEvent, answers: list[str], ok: bool) -> None:
    """A reaction on the comment and one short reply with what was done or why not.

    Both are outbox effects keyed by the comment: posted once, even across redeliveries,
    replicas and GitHub failures (the tick posts what GitHub could not take now).
    """
    assert event.installation_id is not None
    if event.comment_id is not None and event.source.value == "issue_comment":
        react(
            ctx,
            installation_id=event.installation_id,
            repo=repo,
            comment_id=event.comment_id,
            content="+1" if ok else "confused",
        )
    body = f"@{event.author}\n\n" + "\n\n".join(answers)
    post_reply(
        ctx,
        installation_id=event.installation_id,
        key=f"{repo}#{event.pr_number}:{event.source.value}:{event.comment_id}",
        repo=repo,
        issue_number=event.pr_number,
        body=body,
    )
