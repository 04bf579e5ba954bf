"""Commands in PR comments and reviews: parse, authorise, act, answer, refresh the gate."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from bot import audit
from bot.command_service import Outcome, execute
from bot.commands.comment_event import (
    CommentEvent,
    from_issue_comment,
    from_pull_request_review,
    should_ignore,
)
from bot.commands.parser import parse_commands
from bot.context import BotContext
from bot.github_api import InstallationClient
from bot.pr_refresh import get_pull, refresh_pr
from bot.registry_reader import read_policy
from bot.store.models import AuditEvent
from evaluators.escaping import code_span, markdown_to_plain

log = logging.getLogger(__name__)


def run_comment_commands(ctx: BotContext, payload: dict[str, Any]) -> None:
    """issue_comment: act on the commands a person wrote in a PR conversation."""
    try:
        event = from_issue_comment(payload, received_at=ctx.clock.now())
    except ValidationError:
        return  # not a shape we act on; acknowledged, no side effect
    if event is not None:
        _run(ctx, event)


def run_review_commands(ctx: BotContext, payload: dict[str, Any]) -> None:
    """pull_request_review: a review body may carry the same commands."""
    try:
        event = from_pull_request_review(payload, received_at=ctx.clock.now())
    except ValidationError:
        return
    _run(ctx, event)


def _run(ctx: BotContext, event: CommentEvent) -> None:
    if event.installation_id is None:
        return
    if should_ignore(event, bot_login=ctx.github.bot_login()) is not None:
        return
    commands = parse_commands(event.body)
    if not commands:
        return
    client = ctx.github.installation(event.installation_id)
    repo = event.repository
    pull = get_pull(client, repo, event.pr_number)
    policy = read_policy(client, repo, pull.base.sha)
    changed = False
    answers: list[str] = []
    all_ok = True
    for command in commands:
        key = f"{event.source.value}:{event.comment_id}:{command.line}"
        if _already_done(ctx, repo, event.pr_number, key):
            continue  # a redelivered event after a crash: the command already ran
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
        )
        _remember(ctx, repo, event, command.raw, key, outcome, pull.head.sha)
        changed |= outcome.changed_state
        all_ok &= outcome.acted
        answers.append(f"{code_span(command.raw, max_length=300)} — {outcome.message}")
    if not answers:
        return
    if changed:  # the gate first, so the answer never describes a state not yet shown
        refresh_pr(
            ctx, client=client, repo=repo, pull=get_pull(client, repo, pull.number), policy=policy
        )
    _answer(client, repo, event, answers, all_ok)


def _already_done(ctx: BotContext, repo: str, pr_number: int, key: str) -> bool:
    with ctx.store.session() as session:
        rows = session.scalars(
            select(AuditEvent).where(
                AuditEvent.repository == repo,
                AuditEvent.pr_number == pr_number,
                AuditEvent.kind == "command",
            )
        )
        return any((r.detail or {}).get("key") == key for r in rows)


def _remember(
    ctx: BotContext, repo: str, event: CommentEvent, raw: str, key: str, outcome: Outcome, sha: str
) -> None:
    with ctx.store.session() as session:
        audit.record(
            session,
            at=ctx.clock.now(),
            repository=repo,
            kind="command",
            actor=event.author,
            pr_number=event.pr_number,
            head_sha=sha,
            reason=f"{raw.strip()} → {markdown_to_plain(outcome.message)}"[:1000],
            detail={"key": key, "acted": outcome.acted, "url": event.html_url},
        )


def _answer(
    client: InstallationClient, repo: str, event: CommentEvent, answers: list[str], ok: bool
) -> None:
    """A reaction on the comment and one short reply with what was done or why not."""
    if event.comment_id is not None and event.source.value == "issue_comment":
        try:
            client.request(
                "POST",
                f"/repos/{repo}/issues/comments/{event.comment_id}/reactions",
                json={"content": "+1" if ok else "confused"},
            )
        except Exception:
            log.info("could not react to comment %s", event.comment_id)
    body = f"@{event.author}\n\n" + "\n\n".join(answers)
    client.request("POST", f"/repos/{repo}/issues/{event.pr_number}/comments", json={"body": body})
