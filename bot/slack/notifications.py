"""One live channel message per promotion (repo, PR, head SHA): posted once, edited in place."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.context import PromotionChange
from bot.slack.interactions import APPROVE_ACTION, BLOCK_ACTION, button_value
from bot.store.db import Store
from bot.store.slack_models import SlackMessage
from evaluators.escaping import mrkdwn

log = logging.getLogger(__name__)

_ICON = {"success": "✅", "action_required": "⏸️", "failure": "❌"}


def escape(text: str) -> str:
    """Slack reads `<…>` as links and mentions; text from PRs and people must stay text."""
    return mrkdwn(text, max_length=500)


def _text(text: str) -> dict[str, Any]:
    # verbatim: Slack must not turn names, channels or URLs in this text into links itself.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def render_message(change: PromotionChange) -> tuple[str, list[dict[str, Any]]]:
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
    blocks.append(
        {
            "type": "actions",
            "block_id": "shipyard_decide",
            "elements": [
                _button("Approve", APPROVE_ACTION, value, style="primary"),
                _button("Block", BLOCK_ACTION, value, style="danger"),
            ],
        }
    )
    text = f"Shipyard: {escape(ref)} at {change.head_sha[:7]}: {escape(change.gate_title)}"
    return text, blocks


def _button(label: str, action_id: str, value: str, *, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
        "style": style,
    }


class Notifier:
    """A promotion listener: posts the first message when the evaluation is ready, then edits it
    whenever its rendering changes. The ts is stored, so a restart edits rather than reposts."""

    def __init__(self, *, client: WebClient, store: Store, clock: Clock) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()  # one post per promotion among this process's threads

    def __call__(self, change: PromotionChange) -> None:
        channel = change.policy.slack.channel
        if channel is None:
            return
        text, blocks = render_message(change)
        digest = hashlib.sha256(json.dumps([channel, text, blocks]).encode()).hexdigest()
        with self._lock:
            row = self._find(change)
            if row is None:
                if change.gate_conclusion is None:
                    return  # nothing to decide yet: the first message says the evaluation is ready
                self._post(change, channel, text, blocks, digest)
            elif row.rendered_sha256 != digest and row.ts is not None:
                self._client.chat_update(channel=row.channel, ts=row.ts, text=text, blocks=blocks)
                self._save(row.id, ts=row.ts, digest=digest)

    def _find(self, change: PromotionChange) -> SlackMessage | None:
        with self._store.session() as session:
            return session.scalar(
                select(SlackMessage).where(
                    SlackMessage.repository == change.repository,
                    SlackMessage.pr_number == change.pr_number,
                    SlackMessage.head_sha == change.head_sha,
                )
            )

    def _post(
        self,
        change: PromotionChange,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        digest: str,
    ) -> None:
        now = self._clock.now()
        try:  # claim the promotion first, so another replica does not post a second message
            with self._store.session() as session:
                claim = SlackMessage(
                    repository=change.repository,
                    pr_number=change.pr_number,
                    head_sha=change.head_sha,
                    channel=channel,
                    ts=None,
                    posted_at=now,
                    updated_at=now,
                )
                session.add(claim)
                session.flush()
                claim_id = claim.id
        except IntegrityError:
            return  # another replica is posting it; its next change will be edited in
        try:
            response = self._client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        except Exception:
            with self._store.session() as session:  # let the next change try again
                session.execute(delete(SlackMessage).where(SlackMessage.id == claim_id))
            raise
        channel = str(response["channel"])
        self._save(claim_id, ts=str(response["ts"]), digest=digest, channel=channel)

    def _save(self, row_id: int, *, ts: str, digest: str, channel: str | None = None) -> None:
        with self._store.session() as session:
            row = session.get(SlackMessage, row_id)
            if row is None:
                return
            row.ts = ts
            row.rendered_sha256 = digest
            row.updated_at = self._clock.now()
            if channel is not None:
                row.channel = channel
