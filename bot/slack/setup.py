"""Mount Slack on the bot: one Bolt app built at start, `POST /slack/events`, the notifier."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request, Response
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from starlette.concurrency import run_in_threadpool

from bot.context import BotContext
from bot.slack.commands import register_commands
from bot.slack.dedupe import DropRepeats
from bot.slack.interactions import register_interactions
from bot.slack.notifications import Notifier
from bot.slack.signatures import ClockedRequestVerification

MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are a few KB; anything larger is not Slack


def build_bolt_app(ctx: BotContext) -> App:
    """The Bolt app, built once: verification with our clock, durable dedupe, the listeners."""
    settings = ctx.settings
    assert settings.slack_bot_token is not None and settings.slack_signing_secret is not None
    token = settings.slack_bot_token.get_secret_value()
    secret = settings.slack_signing_secret.get_secret_value()
    bolt = App(
        signing_secret=secret,
        client=WebClient(token=token, base_url=_with_slash(settings.slack_api_url)),
        # Bolt's own check reads the wall clock; ours reads the injected one (tests move it).
        request_verification_enabled=False,
        before_authorize=ClockedRequestVerification(signing_secret=secret, clock=ctx.clock),
        token_verification_enabled=False,  # no Slack call at start; auth.test runs on first use
        listener_executor=ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack"),
    )
    bolt.use(DropRepeats(store=ctx.store, clock=ctx.clock))
    register_commands(bolt, ctx)
    register_interactions(bolt, ctx)
    return bolt


def install_slack(app: FastAPI, ctx: BotContext) -> None:
    """Slash commands and interactivity at one endpoint, and notifications after gate refreshes."""
    import bot.store.slack_models  # noqa: F401 - the tables' mappings, before any session uses them

    bolt = build_bolt_app(ctx)

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response(status_code=413)
        # Bolt is synchronous: dispatch off the event loop; it returns once acknowledged.
        bolt_response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    ctx.promotion_listeners.append(Notifier(client=bolt.client, store=ctx.store, clock=ctx.clock))


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
