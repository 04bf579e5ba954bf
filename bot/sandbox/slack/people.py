"""People in the Slack double's workspace: slash commands, button clicks and modal submissions,
sent to the app as Slack sends them (form-encoded, signed, with trigger ids and response_urls)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.base.tls import shared_tls
from bot.sandbox.slack.signing import signed_headers
from bot.sandbox.slack.state import Message, SlackState

API_APP_ID = "A0SHIPYARD"


@dataclass(frozen=True)
class SlackUser:
    team_id: str
    user_id: str
    name: str


@dataclass(frozen=True)
class Sent:
    """A request as sent, so a test can send the very same bytes again."""

    body: bytes
    response: httpx.Response
    response_url: str | None


class SlackPeople:
    """Act as users of `state`'s workspace against the app at `events_url`."""

    def __init__(self, state: SlackState, *, events_url: str, signing_secret: str) -> None:
        self.state = state
        self.events_url = events_url
        self.signing_secret = signing_secret

    def post(
        self, body: bytes, *, timestamp: int | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """Send `body` signed now (by the workspace clock) or at `timestamp`."""
        when = str(timestamp if timestamp is not None else int(self.state.clock().timestamp()))
        sent = signed_headers(self.signing_secret, timestamp=when, body=body)
        return httpx.post(
            self.events_url,
            content=body,
            headers={**sent, **(headers or {})},
            verify=shared_tls(),
        )

    def slash_body(
        self, user: SlackUser, command: str, text: str, *, channel: str = "C0PROMO"
    ) -> tuple[bytes, str]:
        """A slash command's form body, and the response_url it carries."""
        response_url = self.state.new_response_url("commands")
        fields = {
            "token": "verification-token-unused",
            "team_id": user.team_id,
            "team_domain": self.state.team_domain,
            "channel_id": channel,
            "channel_name": "promotions",
            "user_id": user.user_id,
            "user_name": user.name,
            "command": command,
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": self.state.new_trigger_id(),
        }
        return urlencode(fields).encode(), response_url

    def slash(self, user: SlackUser, command: str, text: str) -> Sent:
        body, response_url = self.slash_body(user, command, text)
        return Sent(body, self.post(body), response_url)

    def click(self, user: SlackUser, message: Message, action_id: str) -> Sent:
        """Click the button `action_id` shown in `message`, with the value it carries."""
        block, button = _find_button(message, action_id)
        response_url = self.state.new_response_url("actions")
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user.user_id, "username": user.name, "team_id": user.team_id},
            "api_app_id": API_APP_ID,
            "token": "verification-token-unused",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": self.state.new_trigger_id(),
            "team": {"id": user.team_id, "domain": self.state.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message.channel, "name": "promotions"},
            "message": {
                "type": "message",
                "ts": message.ts,
                "text": message.text,
                "blocks": message.blocks,
            },
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": block.get("block_id", ""),
                    "text": button["text"],
                    "value": button.get("value", ""),
                    "style": button.get("style"),
                    "type": "button",
                    "action_ts": f"{int(self.state.clock().timestamp())}.000100",
                }
            ],
        }
        body = _payload_body(payload)
        return Sent(body, self.post(body), response_url)

    def submit(self, user: SlackUser, view_id: str, values: dict[str, dict[str, str]]) -> Sent:
        """Submit an open modal with `values`: block_id -> action_id -> typed text."""
        view = self.state.views[view_id]
        state = {
            block: {action: {"type": "plain_text_input", "value": text}}
            for block, inputs in values.items()
            for action, text in inputs.items()
        }
        payload: dict[str, Any] = {
            "type": "view_submission",
            "team": {"id": user.team_id, "domain": self.state.team_domain},
            "user": {"id": user.user_id, "username": user.name, "team_id": user.team_id},
            "api_app_id": API_APP_ID,
            "token": "verification-token-unused",
            "trigger_id": self.state.new_trigger_id(),
            "view": {**view, "state": {"values": state}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        body = _payload_body(payload)
        return Sent(body, self.post(body), None)


def _payload_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def _find_button(message: Message, action_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button" and element.get("action_id") == action_id:
                return block, element
    raise LookupError(f"no button {action_id!r} in the message")
