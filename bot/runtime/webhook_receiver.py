"""`POST /github/webhooks`: verify, store, acknowledge. Handling happens later, from the inbox.

The path is kept lean because it is the one anyone on the internet can hit: the body is read
as a capped stream, the HMAC is checked before anything else looks at it, and the bytes are
stored as received (no re-encoding) by a group-committing writer before the 202.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic_core import from_json
from starlette.routing import Route

from bot.base.capped_body import BodyBudget, BodyTooLarge, TooBusy, read_capped
from bot.base.clock import Clock
from bot.base.settings import MAX_WEBHOOK_BYTES
from bot.github import webhook_signature
from bot.runtime.inbox import delivery_values
from bot.runtime.intake_writer import IntakeWriter


def _answer(status: int, message: str, **extra: str) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status)


def too_busy() -> JSONResponse:
    """Too many large bodies in flight: GitHub and Slack retry later."""
    return JSONResponse(
        {"message": "too many large requests at once; retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


_NOT_JSON = object()


def _parse(body: bytes) -> object:
    """The body's JSON value, or _NOT_JSON. pydantic-core's parser takes half of `json.loads`'s
    time on a 22 KB payload; whatever it refuses (e.g. a lone surrogate escape) is tried again
    with `json.loads`, so nothing that was accepted before is refused now."""
    try:
        return from_json(body)
    except ValueError:
        pass
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _NOT_JSON


def webhook_router(
    *,
    writer: IntakeWriter,
    secrets: list[bytes],
    clock: Clock,
    on_stored: Callable[[], None],
    budget: BodyBudget,
) -> APIRouter:
    """The GitHub webhook endpoint, bound to its store and secrets."""
    router = APIRouter()

    async def accept(request: Request, body: bytes) -> JSONResponse:
        signature = request.headers.get("x-hub-signature-256")
        if not webhook_signature.verify(body=body, header=signature, secrets=secrets):
            return _answer(401, "signature does not match")
        event = request.headers.get("x-github-event")
        delivery_id = request.headers.get("x-github-delivery")
        if not event or not delivery_id or len(delivery_id) > 100 or len(event) > 100:
            return _answer(400, "X-GitHub-Event and X-GitHub-Delivery are required")
        payload = _parse(body)
        if payload is _NOT_JSON:
            return _answer(400, "body is not valid JSON")
        if not isinstance(payload, dict):
            return _answer(400, "body must be a JSON object")
        values = delivery_values(
            delivery_id=delivery_id, event=event, payload=payload, body=body, now=clock.now()
        )
        try:
            stored = await writer.record(values)
        except Exception:  # logged by the writer; never acknowledged, so GitHub redelivers
            return _answer(503, "could not store the delivery; retry later")
        if not stored:
            return _answer(202, "duplicate delivery; already accepted", delivery=delivery_id)
        on_stored()
        return _answer(202, "accepted", delivery=delivery_id)

    async def receive_github_webhook(request: Request) -> JSONResponse:
        try:
            async with read_capped(request, limit=MAX_WEBHOOK_BYTES, budget=budget) as body:
                return await accept(request, body)
        except BodyTooLarge:
            return _answer(413, "payload larger than 25 MiB")
        except TooBusy:
            return too_busy()

    # A plain Starlette route, not FastAPI's: the endpoint takes only the request, so FastAPI's
    # per-request dependency solving and response handling (a fifth of the event loop's time
    # under load) would do nothing for it.
    router.routes.append(
        Route(
            "/github/webhooks",
            receive_github_webhook,
            methods=["POST"],
            name="receive_github_webhook",
            include_in_schema=False,
        )
    )
    return router
