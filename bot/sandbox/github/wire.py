"""HTTP plumbing shared by the sandbox routes: GitHub-shaped errors, validation, pagination."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from bot.sandbox.github.models import RecordedRequest, Violation
from bot.sandbox.github.openapi import load_subset, template_of
from bot.sandbox.github.render import Renderer
from bot.sandbox.github.state import SandboxError, SandboxState

DOCS_URL = "https://docs.github.com/rest"
MAX_PER_PAGE = 100
T = TypeVar("T")


def sandbox_of(request: Request) -> SandboxState:
    """The state behind the app serving ``request``."""
    state: SandboxState = request.app.state.sandbox
    return state


def renderer_of(request: Request) -> Renderer:
    """A renderer rooted at the sandbox's URL."""
    return Renderer(sandbox_of(request))


def route_template(request: Request) -> str | None:
    """The OpenAPI path template of the route that matched, if any."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return None if path is None else template_of(path)


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    """GitHub's error body: ``message``, ``documentation_url`` and ``status``."""
    return {"message": message, "documentation_url": DOCS_URL, "status": str(status), **extra}


async def json_body(request: Request) -> Any:
    """The request's JSON body, validated against the subset (violations recorded, then 422)."""
    state = sandbox_of(request)
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise SandboxError(400, "Problems parsing JSON") from exc
    template = route_template(request)
    if template is None:
        return body
    errors = load_subset().request_errors(request.method, template, body)
    if errors:
        with state.lock:
            state.violations.append(
                Violation(request.method, request.url.path, "request-body", tuple(errors))
            )
        raise SandboxError(422, "Invalid request.\n\n" + "\n".join(errors))
    return body


def respond(
    request: Request,
    body: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON response, checked against the documented schema for its status."""
    template = route_template(request)
    if template is not None:
        errors = load_subset().response_errors(request.method, template, status, body)
        if errors:
            state = sandbox_of(request)
            with state.lock:
                state.response_violations.append(
                    Violation(request.method, request.url.path, f"response-{status}", tuple(errors))
                )
    return JSONResponse(body, status_code=status, headers=headers)


def paginate(request: Request, items: Sequence[T]) -> tuple[list[T], dict[str, str]]:
    """One page of ``items`` (``per_page``/``page``) and GitHub's ``Link`` header."""
    try:
        per_page = min(int(request.query_params.get("per_page", "30")), MAX_PER_PAGE)
        page = max(int(request.query_params.get("page", "1")), 1)
    except ValueError as exc:
        raise SandboxError(422, "Invalid request.\n\nper_page and page must be integers") from exc
    per_page = max(per_page, 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = list(items[(page - 1) * per_page : page * per_page])

    def link(to: int, rel: str) -> str:
        query = dict(request.query_params) | {"per_page": str(per_page), "page": str(to)}
        return f'<{request.url.replace(query=urlencode(query))}>; rel="{rel}"'

    rels = []
    if page > 1:
        rels += [link(page - 1, "prev"), link(1, "first")]
    if page < last:
        rels += [link(page + 1, "next"), link(last, "last")]
    return chunk, ({"Link": ", ".join(rels)} if rels else {})


def handle_sandbox_error(request: Request, exc: Exception) -> Response:
    """Render a SandboxError as GitHub does."""
    assert isinstance(exc, SandboxError)
    headers = {"WWW-Authenticate": 'Bearer realm="GitHub"'} if exc.status == 401 else None
    return JSONResponse(
        error_body(exc.status, exc.message, **exc.extra), status_code=exc.status, headers=headers
    )


def handle_http_error(request: Request, exc: Exception) -> Response:
    """Render Starlette's own 404/405 (no such route) as GitHub does."""
    assert isinstance(exc, StarletteHTTPException)
    message = "Not Found" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code)


def _matches_a_route(request: Request) -> bool:
    return any(route.matches(request.scope)[0] is Match.FULL for route in request.app.router.routes)


async def sandbox_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Serve injected failures first, flag calls outside the subset, and record every request."""
    state = sandbox_of(request)
    body = await request.body()
    hook = state.on_request
    forced = (
        None
        if hook is None
        else await anyio.to_thread.run_sync(hook, request.method, request.url.path)
    )
    failure = state.take_failure(request.method, request.url.path)
    if forced is not None:
        response: Response = JSONResponse(error_body(forced, "Server Error"), status_code=forced)
    elif failure is not None:
        response = JSONResponse(
            error_body(failure.status, **failure.body),
            status_code=failure.status,
            headers=failure.headers,
        )
    else:
        if not _matches_a_route(request):
            with state.lock:
                state.violations.append(
                    Violation(request.method, request.url.path, "unknown-operation", ())
                )
        response = await call_next(request)
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = body
    with state.lock:
        state.requests.append(
            RecordedRequest(
                request.method,
                request.url.path,
                route_template(request),
                response.status_code,
                parsed,
                request.url.query,
            )
        )
    return response
