"""Mount Slack on the bot: one Bolt app built at start, `POST /slack/events`, the notifier."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request, Response
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from starlette.concurrency import run_in_threadpool

from bot.base.capped_body import BodyBudget, BodyTooLarge, TooBusy, read_capped
from bot.runtime.context import BotContext
from bot.runtime.webhook_receiver import too_busy
from bot.slack.commands import register_commands
from bot.slack.dedupe import DropRepeats
from bot.slack.interactions import register_interactions
from bot.slack.monitor_alerts import MonitorAlerts
from bot.slack.notifications import Notifier
from bot.slack.signatures import ClockedRequestVerification

MAX_BODY_BYTES = 64 * 1024  # Slack's payloads are a few KB; anything larger is not Slack


def build_bolt_app(ctx: BotContext) -> App:
    """The Bolt app, built once: verification with our clock, durable dedupe, the listeners."""
    settings = ctx.settings
    assert settings.slack_bot_token is not None and settings.slack_signing_secret is not None
    token = settings.slack_bot_token.get_secret_value()
    secret = settings.slack_signing_secret.get_secret_value()
    bolt = App(
        signing_secret=secret,
        # Listeners get a client holding the token `authorize` returns, on this base URL.
        client=WebClient(base_url=_with_slash(settings.slack_api_url)),
        # Bolt's own check reads the wall clock; ours reads the injected one (tests move it).
        request_verification_enabled=False,
        before_authorize=ClockedRequestVerification(signing_secret=secret, clock=ctx.clock),
        # One workspace, one token: authorizing a request needs no Slack call. Bolt's default
        # (auth.test on the first request) answered 500 while Slack's Web API was unreachable,
        # before the acknowledgement; an outage must only delay the reply, never lose the ack.
        authorize=_single_workspace(token),
        listener_executor=ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack"),
    )
    bolt.use(DropRepeats(store=ctx.store, clock=ctx.clock))
    register_commands(bolt, ctx)
    register_interactions(bolt, ctx)
    return bolt


def install_slack(app: FastAPI, ctx: BotContext, *, events: bool = True) -> None:
    """Slash commands and interactivity at one endpoint, and notifications after gate refreshes.

    `events=False` (a `shipyard work` process, which serves no public route) installs only the
    notifications: the promotions it handles still reach Slack.
    """
    import bot.store.slack_models  # noqa: F401 - the tables' mappings, before any session uses them

    if events:
        _install_events(app, ctx)
    settings = ctx.settings
    assert settings.slack_bot_token is not None
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=_with_slash(settings.slack_api_url),
    )
    ctx.promotion_listeners.append(Notifier(client=client, store=ctx.store, clock=ctx.clock))
    ctx.alert_listeners.append(MonitorAlerts(store=ctx.store, clock=ctx.clock))


def _install_events(app: FastAPI, ctx: BotContext) -> None:
    """`POST /slack/events`: Bolt answers slash commands and interactivity."""
    bolt = build_bolt_app(ctx)

    budget: BodyBudget = app.state.body_budget

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        try:
            async with read_capped(request, limit=MAX_BODY_BYTES, budget=budget) as body:
                # Bolt is synchronous: dispatch off the event loop; it returns once acknowledged.
                bolt_request = to_bolt_request(request, body)
                bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        except BodyTooLarge:
            return Response("request body too large", status_code=413)
        except TooBusy:
            return too_busy()
        return to_starlette_response(bolt_response)


def _single_workspace(token: str) -> Callable[..., AuthorizeResult]:
    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    return authorize


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
