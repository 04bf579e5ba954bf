"""Slack actions go through the inbox: stored before Slack gets its acknowledgement, handled by
the same workers as webhooks, so a crash after the acknowledgement loses nothing.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import AwareDatetime, BaseModel
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient
from sqlalchemy import select

from bot.commands.parser import CommandName
from bot.runtime import outbox
from bot.runtime.context import BotContext
from bot.runtime.inbox import record_delivery
from bot.slack.actions import SlackActor, act
from bot.slack.targets import PullTarget
from bot.store.models import AuditEvent

SLACK_EVENT = "slack_action"


class SlackReply(BaseModel):
    """Where the private answer goes: a slash command's response_url, or the channel."""

    response_url: str | None = None
    channel: str | None = None
    user: str | None = None


class SlackAction(BaseModel):
    request_key: str
    repo: str
    number: int
    name: CommandName
    args: str
    team_id: str
    user_id: str
    expected_sha: str | None = None
    # When the person acted: the signed X-Slack-Request-Timestamp, not when we handle it.
    signed_at: AwareDatetime | None = None
    reply: SlackReply


def enqueue(ctx: BotContext, action: SlackAction) -> None:
    """Store the action (once per signed request) and wake the workers."""
    payload = action.model_dump(mode="json")
    record_delivery(
        ctx.store,
        delivery_id=f"slack:{action.request_key}"[:100],
        event=SLACK_EVENT,
        payload=payload,
        body=json.dumps(payload).encode(),
        now=ctx.clock.now(),
    )
    ctx.wake_inbox()


def _already_done(ctx: BotContext, action: SlackAction) -> bool:
    key = f"slack:{action.request_key}"
    with ctx.store.session() as session:
        rows = session.scalars(
            select(AuditEvent).where(
                AuditEvent.repository == action.repo,
                AuditEvent.pr_number == action.number,
                AuditEvent.kind == "command",
            )
        )
        return any((row.detail or {}).get("key") == key for row in rows)


def handle_slack_action(ctx: BotContext, payload: dict[str, Any]) -> None:
    """Inbox route: act through the one command path, then answer the person privately."""
    action = SlackAction.model_validate(payload)
    if _already_done(ctx, action):
        return  # handled before a crash; the audit row says so
    answer = act(
        ctx,
        target=PullTarget(repo=action.repo, number=action.number),
        name=action.name,
        args=action.args,
        actor=SlackActor(team_id=action.team_id, user_id=action.user_id),
        request_key=action.request_key,
        expected_sha=action.expected_sha,
        signed_at=action.signed_at,
    )
    reply = action.reply
    outbox.submit(  # the private answer: once per signed request, retried if Slack is down
        ctx,
        key=outbox.effect_key("slack-answer", action.request_key),
        kind=SLACK_ANSWER,
        payload={**reply.model_dump(mode="json"), "text": answer},
        installation_id=None,
    )


def _send_answer(attempt: outbox.Attempt) -> dict[str, Any]:
    ctx = attempt.rt
    assert isinstance(ctx, BotContext)
    reply = SlackReply.model_validate(attempt.payload)
    text = str(attempt.payload["text"])
    if reply.response_url:
        sent = WebhookClient(reply.response_url, retry_handlers=[]).send(
            text=text, response_type="ephemeral", replace_original=False
        )
        if sent.status_code >= 500 or sent.status_code == 429:
            raise outbox.EffectInDoubt(f"response_url answered {sent.status_code}")
        if sent.status_code >= 400:
            raise outbox.EffectRefused(sent.status_code, "response_url refused the answer")
    elif reply.channel and reply.user and ctx.settings.slack_bot_token is not None:
        client = WebClient(
            token=ctx.settings.slack_bot_token.get_secret_value(),
            base_url=ctx.settings.slack_api_url.rstrip("/") + "/",
            retry_handlers=[],
        )
        client.chat_postEphemeral(channel=reply.channel, user=reply.user, text=text)
    return {}


SLACK_ANSWER = "slack_answer"
outbox.register(SLACK_ANSWER, _send_answer)
