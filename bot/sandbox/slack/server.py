"""The Slack double over HTTP: `POST /api/<method>` (form or JSON, Bearer token) and hooks."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from bot.base.local_server import LocalServer
from bot.sandbox.slack.state import SlackError, SlackState

_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")  # form posts send these as JSON text


def create_app(state: SlackState) -> FastAPI:
    """Slack's Web API as Slack answers it: HTTP 200 with `ok` true or false and an error code."""
    app = FastAPI(title="Slack sandbox")

    @app.post("/api/{method}")
    async def web_api(method: str, request: Request) -> JSONResponse:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return _error("not_authed")
        if authorization.removeprefix("Bearer ") != state.bot_token:
            return _error("invalid_auth")
        try:
            params = await _params(request)
        except ValueError:
            return _error("invalid_json")
        try:
            result = state.call(method, params)
        except SlackError as exc:
            return _error(exc.code)
        return JSONResponse({"ok": True, **result})

    @app.post("/{kind}/{team}/{hook_id}/{token}")
    async def response_url(kind: str, team: str, hook_id: str, token: str, request: Request) -> Any:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if not state.hook(f"/{kind}/{team}/{hook_id}/{token}", body):
            return PlainTextResponse("used_url", status_code=404)
        return PlainTextResponse("ok")

    return app


async def _params(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        parsed = json.loads(raw or b"{}")
        if not isinstance(parsed, dict):
            raise ValueError("a JSON object is expected")
        return parsed
    params: dict[str, Any] = dict(parse_qsl(raw.decode(), keep_blank_values=True))
    for name in _JSON_FIELDS:
        if isinstance(params.get(name), str):
            params[name] = json.loads(params[name])
    return params


def _error(code: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": code})


class SlackSandboxServer:
    """Serve a SlackState on loopback; `api_url` is what the bot's settings point at."""

    def __init__(self, state: SlackState) -> None:
        self.state = state
        self._server = LocalServer(create_app(state))
        state.base_url = self._server.url

    @property
    def api_url(self) -> str:
        return f"{self._server.url}/api/"

    def start(self) -> SlackSandboxServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
