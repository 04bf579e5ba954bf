"""The notification's buttons: Approve acts at once, Block asks for a reason in a modal first;
while a canary runs, Pause acts at once and Roll back asks for its reason in a modal; after a
rollback or pause that paged on-call, Acknowledge resolves the page. Every button is the same
command as typed, through the same path and the same authorisation."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient

from bot.commands.parser import CommandName
from bot.runtime.context import BotContext
from bot.slack.actions import SlackActor
from bot.slack.dedupe import body_key
from bot.slack.durable import SlackAction, SlackReply, enqueue
from bot.slack.targets import PullTarget
from evaluators.escaping import mrkdwn_code

log = logging.getLogger(__name__)

APPROVE_ACTION = "shipyard_approve"
BLOCK_ACTION = "shipyard_block"
BLOCK_VIEW = "shipyard_block_reason"
PAUSE_ACTION = "shipyard_pause"
ROLLBACK_ACTION = "shipyard_rollback"
ROLLBACK_VIEW = "shipyard_rollback_reason"
ACK_ACTION = "shipyard_ack"
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
    """Both buttons and the modal: the work is stored, then acknowledged; workers do it."""

    def ack_only(ack: Ack) -> None:
        ack()

    def send(
        request: BoltRequest,
        body: Mapping[str, Any],
        target: PullTarget,
        name: CommandName,
        args: str,
        reply: SlackReply,
        *,
        expected_sha: str | None = None,
    ) -> None:
        """Store the button's command as a durable delivery; a worker carries it out."""
        actor = _actor(body)
        enqueue(
            ctx,
            SlackAction(
                request_key=body_key(request.raw_body),
                repo=target.repo,
                number=target.number,
                name=name,
                args=args,
                team_id=actor.team_id,
                user_id=actor.user_id,
                expected_sha=expected_sha,
                reply=reply,
            ),
        )

    def approve(
        ack: Ack, body: Mapping[str, Any], action: Mapping[str, Any], request: BoltRequest
    ) -> None:
        target, sha = _promotion(str(action["value"]))
        reply = SlackReply(response_url=body.get("response_url"))
        send(request, body, target, CommandName.APPROVE, "", reply, expected_sha=sha)
        ack()

    def act_at_once(name: CommandName) -> Callable[..., None]:
        def clicked(
            ack: Ack, body: Mapping[str, Any], action: Mapping[str, Any], request: BoltRequest
        ) -> None:
            target, _sha = _promotion(str(action["value"]))
            reply = SlackReply(response_url=body.get("response_url"))
            send(request, body, target, name, "", reply)
            ack()

        return clicked

    def open_modal(kind: _ReasonModal) -> Callable[..., None]:
        def opened(body: Mapping[str, Any], action: Mapping[str, Any], client: WebClient) -> None:
            target, sha = _promotion(str(action["value"]))
            metadata = {
                "value": action["value"],
                "channel": (body.get("channel") or {}).get("id"),
            }
            client.views_open(
                trigger_id=str(body["trigger_id"]),
                view=reason_modal(
                    kind, subject=f"{target} at {sha[:7]}", metadata=json.dumps(metadata)
                ),
            )

        return opened

    def submitted(kind: _ReasonModal) -> Callable[..., None]:
        def submit(
            ack: Ack, body: Mapping[str, Any], view: Mapping[str, Any], request: BoltRequest
        ) -> None:
            reason = _reason(view)
            if not reason:
                ack(response_action="errors", errors={REASON_BLOCK: kind.missing})
                return
            metadata = json.loads(str(view["private_metadata"]))
            target, _sha = _promotion(str(metadata["value"]))
            # A modal has no response_url: the answer goes to the channel, privately.
            reply = SlackReply(channel=metadata.get("channel"), user=_actor(body).user_id)
            send(request, body, target, kind.command, reason, reply)
            ack()

        return submit

    bolt.action(APPROVE_ACTION)(approve)
    for kind in (_BLOCK_MODAL, _ROLLBACK_MODAL):
        bolt.action(kind.action_id)(ack=ack_only, lazy=[open_modal(kind)])  # views.open only
        bolt.view(kind.callback_id)(submitted(kind))
    bolt.action(PAUSE_ACTION)(act_at_once(CommandName.PAUSE))
    bolt.action(ACK_ACTION)(act_at_once(CommandName.ACK))


@dataclass(frozen=True)
class _ReasonModal:
    """A button whose command needs a reason, and the modal that asks for it."""

    command: CommandName
    action_id: str
    callback_id: str
    title: str
    submit: str
    prompt: str  # {subject} is the promotion, shown as code
    missing: str


_BLOCK_MODAL = _ReasonModal(
    command=CommandName.BLOCK,
    action_id=BLOCK_ACTION,
    callback_id=BLOCK_VIEW,
    title="Block promotion",
    submit="Block",
    prompt="Stop promoting {subject} until unblocked.",
    missing="Say why it must not ship.",
)
_ROLLBACK_MODAL = _ReasonModal(
    command=CommandName.ROLLBACK,
    action_id=ROLLBACK_ACTION,
    callback_id=ROLLBACK_VIEW,
    title="Roll back the canary",
    submit="Roll back",
    prompt="Send all traffic of {subject} back to the previous version at the next check.",
    missing="Say why it must roll back: on-call and the PR will see it.",
)


def _reason(view: Mapping[str, Any]) -> str:
    state = view.get("state", {}).get("values", {})
    value = state.get(REASON_BLOCK, {}).get(REASON_INPUT, {}).get("value") or ""
    return str(value).strip()


def reason_modal(kind: _ReasonModal, *, subject: str, metadata: str) -> dict[str, Any]:
    """The modal asking why (a promotion must stop, a canary must roll back)."""
    prompt = kind.prompt.format(subject=mrkdwn_code(subject, max_length=200))
    return {
        "type": "modal",
        "callback_id": kind.callback_id,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": kind.title},
        "submit": {"type": "plain_text", "text": kind.submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": prompt, "verbatim": True},
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
