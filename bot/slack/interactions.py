"""The notification's buttons: Approve acts at once, Block asks for a reason in a modal first."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient

from bot.commands.parser import CommandName
from bot.context import BotContext
from bot.slack.actions import SlackActor, act
from bot.slack.dedupe import body_key
from bot.slack.targets import PullTarget

log = logging.getLogger(__name__)

APPROVE_ACTION = "shipyard_approve"
BLOCK_ACTION = "shipyard_block"
BLOCK_VIEW = "shipyard_block_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"


def button_value(*, repo: str, pr_number: int, head_sha: str) -> str:
    """What a button carries: the promotion it is about, SHA included."""
    return json.dumps({"repo": repo, "pr": pr_number, "sha": head_sha}, separators=(",", ":"))


def _promotion(value: str) -> tuple[PullTarget, str]:
    data = json.loads(value)
    return PullTarget(repo=str(data["repo"]), number=int(data["pr"])), str(data["sha"])


def _actor(body: Mapping[str, Any]) -> SlackActor:
    user = body["user"]
    team = str(user.get("team_id") or body["team"]["id"])
    return SlackActor(team_id=team, user_id=str(user["id"]))


def register_interactions(bolt: App, ctx: BotContext) -> None:
    """Both buttons and the modal: acknowledged at once, handled lazily."""

    def ack_only(ack: Ack) -> None:
        ack()

    def approve(
        body: Mapping[str, Any], action: Mapping[str, Any], respond: Respond, request: BoltRequest
    ) -> None:
        target, sha = _promotion(str(action["value"]))
        try:
            answer = act(
                ctx,
                target=target,
                name=CommandName.APPROVE,
                args="",
                actor=_actor(body),
                request_key=body_key(request.raw_body),
                expected_sha=sha,
            )
        except Exception:
            log.exception("Slack approve on %s failed", target)
            answer = f"Something went wrong with `{target}`; check the PR before retrying."
        respond(text=answer, response_type="ephemeral", replace_original=False)

    def open_block_modal(
        body: Mapping[str, Any], action: Mapping[str, Any], client: WebClient
    ) -> None:
        target, sha = _promotion(str(action["value"]))
        metadata = {
            "value": action["value"],
            "channel": (body.get("channel") or {}).get("id"),
        }
        client.views_open(
            trigger_id=str(body["trigger_id"]),
            view=block_modal(title=f"{target} at {sha[:7]}", metadata=json.dumps(metadata)),
        )

    def check_reason(ack: Ack, view: Mapping[str, Any]) -> None:
        if _reason(view):
            ack()
        else:
            ack(response_action="errors", errors={REASON_BLOCK: "Say why it must not ship."})

    def block(
        body: Mapping[str, Any], view: Mapping[str, Any], client: WebClient, request: BoltRequest
    ) -> None:
        reason = _reason(view)
        if not reason:
            return  # refused in the acknowledgement; Bolt still runs lazy listeners
        metadata = json.loads(str(view["private_metadata"]))
        target, _sha = _promotion(str(metadata["value"]))
        actor = _actor(body)
        try:
            answer = act(
                ctx,
                target=target,
                name=CommandName.BLOCK,
                args=reason,
                actor=actor,
                request_key=body_key(request.raw_body),
            )
        except Exception:
            log.exception("Slack block on %s failed", target)
            answer = f"Something went wrong with `{target}`; check the PR before retrying."
        if metadata.get("channel"):  # a modal has no response_url: answer in the channel, privately
            client.chat_postEphemeral(channel=metadata["channel"], user=actor.user_id, text=answer)

    bolt.action(APPROVE_ACTION)(ack=ack_only, lazy=[approve])
    bolt.action(BLOCK_ACTION)(ack=ack_only, lazy=[open_block_modal])
    bolt.view(BLOCK_VIEW)(ack=check_reason, lazy=[block])


def _reason(view: Mapping[str, Any]) -> str:
    state = view.get("state", {}).get("values", {})
    value = state.get(REASON_BLOCK, {}).get(REASON_INPUT, {}).get("value") or ""
    return str(value).strip()


def block_modal(*, title: str, metadata: str) -> dict[str, Any]:
    """The modal asking why a promotion must stop."""
    return {
        "type": "modal",
        "callback_id": BLOCK_VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Block promotion"},
        "submit": {"type": "plain_text", "text": "Block"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"Stop promoting `{title}` until unblocked."},
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": 1000,
                },
            },
        ],
    }
