"""One live channel message per promotion (repo, PR, head SHA): posted once, edited in place.

Before the merge it offers Approve and Block; once a canary of the merged head exists, its
status instead, with Pause and Roll back while it runs and Acknowledge while a page is open.
The canary part is read from the store at each rendering, so whoever re-renders the message
(a gate refresh, the rollout's visit) shows the canary as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.base.clock import Clock
from bot.rollout.canary_requests import RolloutSeen, rollouts_of
from bot.runtime import outbox
from bot.runtime.context import PromotionChange
from bot.slack.interactions import (
    ACK_ACTION,
    APPROVE_ACTION,
    BLOCK_ACTION,
    PAUSE_ACTION,
    ROLLBACK_ACTION,
    button_value,
)
from bot.store.db import Store
from bot.store.models import CanaryStatus
from evaluators.escaping import mrkdwn

log = logging.getLogger(__name__)

_ICON = {"success": "✅", "action_required": "⏸️", "failure": "❌"}


def escape(text: str) -> str:
    """Slack reads `<…>` as links and mentions; text from PRs and people must stay text."""
    return mrkdwn(text, max_length=500)


def _text(text: str) -> dict[str, Any]:
    # verbatim: Slack must not turn names, channels or URLs in this text into links itself.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


_LIVE = frozenset({CanaryStatus.RUNNING.value, CanaryStatus.PAUSED.value})


def _canary_fact(line: RolloutSeen) -> str:
    text = f"*Canary {mrkdwn(line.model, max_length=100)}:* {line.status.replace('_', ' ')}"
    if line.title:
        text += f" — {escape(line.title)}"
    if line.paged:
        text += " · on-call paged"
    if line.requested_action:
        who = mrkdwn(line.requested_by or "someone", max_length=100)
        text += f" · {mrkdwn(line.requested_action, max_length=20)} asked by {who}"
    return text


def _canary_buttons(canaries: Sequence[RolloutSeen], value: str) -> list[dict[str, Any]]:
    """Pause while one runs, Roll back while one runs or is paused, Acknowledge while paged."""
    buttons: list[dict[str, Any]] = []
    if any(c.status == CanaryStatus.RUNNING.value for c in canaries):
        buttons.append(_button("Pause", PAUSE_ACTION, value))
    if any(c.status in _LIVE for c in canaries):
        buttons.append(_button("Roll back", ROLLBACK_ACTION, value, style="danger"))
    if any(c.paged for c in canaries):
        buttons.append(_button("Acknowledge", ACK_ACTION, value, style="primary"))
    return buttons


def render_message(
    change: PromotionChange, *, canaries: Sequence[RolloutSeen] = ()
) -> tuple[str, list[dict[str, Any]]]:
    """The fallback text and the blocks of a promotion's message."""
    ref = f"{change.repository}#{change.pr_number}"
    link = f"<{change.pr_url}|{escape(ref)}>" if change.pr_url else escape(ref)
    icon = _ICON.get(change.gate_conclusion or "", "⏳")
    verdict = f"{icon} {escape(change.gate_title)}"
    facts = [
        f"*Verdict:* {verdict}",
        f"*Head:* `{change.head_sha[:7]}`",
    ]
    if change.window_ends_at is not None:
        facts.append(f"*Review window ends:* {change.window_ends_at:%Y-%m-%d %H:%M} UTC")
    facts += [f"*Shadow:* {escape(line)}" for line in change.shadow_lines]
    facts += [_canary_fact(line) for line in canaries]
    headlines = "\n".join(f"• {escape(h)}" for h in change.headlines) or "• evaluating…"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": _text(f"*{link}* {escape(change.pr_title)}"),
        },
        {"type": "section", "text": _text(headlines)},
        {"type": "section", "text": _text("\n".join(facts))},
    ]
    if change.report_urls:
        reports = " · ".join(f"<{url}|report {i}>" for i, url in enumerate(change.report_urls, 1))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": reports}]})
    value = button_value(
        repo=change.repository, pr_number=change.pr_number, head_sha=change.head_sha
    )
    if canaries:  # merged: the decision is made; what is left is the canary's
        buttons = _canary_buttons(canaries, value)
    else:
        buttons = [
            _button("Approve", APPROVE_ACTION, value, style="primary"),
            _button("Block", BLOCK_ACTION, value, style="danger"),
        ]
    if buttons:
        blocks.append({"type": "actions", "block_id": "shipyard_decide", "elements": buttons})
    text = f"Shipyard: {escape(ref)} at {change.head_sha[:7]}: {escape(change.gate_title)}"
    return text, blocks


def _button(label: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }
    return button if style is None else {**button, "style": style}


SLACK_MESSAGE = "slack_message"
_TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable"})


@dataclass(frozen=True)
class SlackRuntime:
    """The outbox runtime of a Slack effect: the store and the clock; no GitHub."""

    store: Store
    clock: Clock

    @property
    def github(self) -> outbox.Installations:
        raise AssertionError("a Slack effect does not call GitHub")


class Notifier:
    """A promotion listener: posts the first message when the evaluation is ready, then edits it
    whenever its rendering changes.

    The message is an outbox effect keyed by the promotion: the row is the claim that keeps a
    second replica from posting a second message, its result keeps the ts so every later
    rendering (and a restart) edits, and a post Slack could not take is retried by the tick.
    """

    def __init__(self, *, client: WebClient, store: Store, clock: Clock) -> None:
        self._client = client
        # slack_sdk repeats a request after a connection error by default; a repeated
        # chat.postMessage is a second message. The outbox decides about retries instead.
        self._client.retry_handlers = []
        self._runtime = SlackRuntime(store=store, clock=clock)
        outbox.register(SLACK_MESSAGE, self._run)

    def __call__(self, change: PromotionChange) -> None:
        channel = change.policy.slack.channel
        if channel is None:
            return
        with self._runtime.store.session() as session:
            canaries = rollouts_of(
                session,
                repository=change.repository,
                pr_number=change.pr_number,
                head_sha=change.head_sha,
            )
        text, blocks = render_message(change, canaries=canaries)
        key = outbox.effect_key("slack", f"{change.repository}#{change.pr_number}", change.head_sha)
        if change.gate_conclusion is None and outbox.result_of(self._runtime.store, key) is None:
            return  # nothing to decide yet: the first message says the evaluation is ready
        outbox.submit(
            self._runtime,
            key=key,
            kind=SLACK_MESSAGE,
            payload={"channel": channel, "text": text, "blocks": blocks},
            installation_id=None,
            replace=True,
        )

    def _run(self, attempt: outbox.Attempt) -> dict[str, Any]:
        p = attempt.payload
        ts = attempt.result.get("ts")
        try:
            if ts is not None:  # editing our message to a given rendering is idempotent
                self._client.chat_update(
                    channel=attempt.result["channel"], ts=ts, text=p["text"], blocks=p["blocks"]
                )
                return dict(attempt.result)
            response = self._client.chat_postMessage(
                channel=p["channel"], text=p["text"], blocks=p["blocks"]
            )
        except SlackApiError as exc:
            status = int(exc.response.status_code or 0)
            error = str(exc.response.get("error") or "error")
            if status >= 500 or status == 429 or error in _TRANSIENT:
                raise outbox.EffectInDoubt(error) from None  # the tick tries again
            raise outbox.EffectRefused(status, error) from None  # e.g. channel_not_found
        return {"channel": str(response["channel"]), "ts": str(response["ts"])}
