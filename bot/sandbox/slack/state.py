"""What the Slack double knows and records: channels, messages, views, hooks, every API call."""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

RESPONSE_URL_USES = 5  # Slack accepts up to five responses per response_url


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    versions: list[dict[str, Any]] = field(default_factory=list)  # every text/blocks it showed


@dataclass(frozen=True)
class ApiCall:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class HookPost:
    """A post to a response_url: what the user was told (ephemeral unless it says otherwise)."""

    url: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass(frozen=True)
class Ephemeral:
    channel: str
    user: str
    text: str


class SlackError(Exception):
    """A Web API refusal: `{"ok": false, "error": code}`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class SlackState:
    """One workspace with one bot; the app's API calls are checked as Slack checks them."""

    def __init__(
        self,
        *,
        bot_token: str,
        team_id: str = "T0TEAM",
        team_domain: str = "acme",
        channels: tuple[str, ...] = ("C0PROMO",),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.channels = set(channels)  # channels the bot was invited to
        self.clock = clock
        self.base_url = ""  # set by the server once it listens
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.hook_posts: list[HookPost] = []
        self.ephemerals: list[Ephemeral] = []
        self._triggers: dict[str, bool] = {}  # trigger_id -> already exchanged
        self._hooks: dict[str, int] = {}  # response_url path -> uses left
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    # -- what Slack hands out with each user request ------------------------------------------

    def new_trigger_id(self) -> str:
        with self._lock:
            trigger = f"{next(self._ids)}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"
            self._triggers[trigger] = False
            return trigger

    def new_response_url(self, kind: str = "commands") -> str:
        with self._lock:
            path = f"/{kind}/{self.team_id}/{next(self._ids)}/{secrets.token_urlsafe(18)}"
            self._hooks[path] = RESPONSE_URL_USES
            return self.base_url + path

    # -- the Web API -------------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one Web API method; raises SlackError as Slack answers ok=false."""
        with self._lock:
            self.calls.append(ApiCall(method, params))
            handler = _METHODS.get(method)
            if handler is None:
                raise SlackError("unknown_method")
            return handler(self, params)

    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain,
            "user": "shipyard",
            "team_id": self.team_id,
            "user_id": "U0SHIPYARD",
            "bot_id": "B0SHIPYARD",
            "is_enterprise_install": False,
        }

    def _channel(self, params: dict[str, Any]) -> str:
        channel = str(params.get("channel") or "")
        if not channel:
            raise SlackError("channel_not_found")
        if channel not in self.channels:
            raise SlackError("not_in_channel")
        return channel

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        text, blocks = _content(params)
        ts = self._ts()
        message = Message(channel=channel, ts=ts, text=text, blocks=blocks)
        message.versions.append({"text": text, "blocks": blocks})
        self.messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": _shown(message)}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self.messages.get((channel, str(params.get("ts") or "")))
        if message is None:
            raise SlackError("message_not_found")
        message.text, message.blocks = _content(params)
        message.versions.append({"text": message.text, "blocks": message.blocks})
        return {"channel": channel, "ts": message.ts, "text": message.text}

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        if not params.get("user"):
            raise SlackError("user_not_found")
        text, _ = _content(params)
        self.ephemerals.append(Ephemeral(channel, str(params["user"]), text))
        return {"message_ts": self._ts()}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = str(params.get("trigger_id") or "")
        if trigger not in self._triggers:
            raise SlackError("invalid_trigger_id")
        if self._triggers[trigger]:
            raise SlackError("trigger_exchanged")
        view = params.get("view")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackError("invalid_arguments")
        self._triggers[trigger] = True
        view_id = f"V{next(self._ids):08d}"
        opened = {**view, "id": view_id, "team_id": self.team_id, "state": {"values": {}}}
        self.views[view_id] = opened
        return {"view": opened}

    def _ts(self) -> str:
        return f"{int(self.clock().timestamp())}.{next(self._ids):06d}"

    # -- response_url hooks ------------------------------------------------------------------

    def hook(self, path: str, body: dict[str, Any]) -> bool:
        """A post to a response_url; False when the URL is unknown or used up."""
        with self._lock:
            left = self._hooks.get(path, 0)
            if left <= 0:
                return False
            self._hooks[path] = left - 1
            self.hook_posts.append(HookPost(self.base_url + path, body))
            return True

    def said_to(self, response_url: str) -> list[str]:
        """Every text posted to one response_url."""
        with self._lock:
            return [p.text for p in self.hook_posts if p.url == response_url]

    def channel_messages(self, channel: str) -> list[Message]:
        with self._lock:
            return [m for (c, _), m in sorted(self.messages.items()) if c == channel]


def _content(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = str(params.get("text") or "")
    blocks = params.get("blocks") or []
    if not text and not blocks:
        raise SlackError("no_text")
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks")
    return text, blocks


def _shown(message: Message) -> dict[str, Any]:
    return {"type": "message", "text": message.text, "blocks": message.blocks, "ts": message.ts}


_METHODS: dict[str, Callable[[SlackState, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": SlackState._auth_test,
    "chat.postMessage": SlackState._post_message,
    "chat.update": SlackState._update,
    "chat.postEphemeral": SlackState._post_ephemeral,
    "views.open": SlackState._views_open,
}
