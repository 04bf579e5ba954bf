"""The sandbox ASGI app: every router, the error handler and the recording middleware."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.sandbox.github import lfs
from bot.sandbox.github.routes import access, apps, checks, deployments, git, issues, pulls
from bot.sandbox.github.state import SandboxError, SandboxState
from bot.sandbox.github.wire import handle_http_error, handle_sandbox_error, sandbox_middleware

# checks first: /commits/{ref}/check-runs must win over /commits/{ref:path}.
REST_ROUTERS = tuple(m.router for m in (checks, apps, pulls, git, issues, access, deployments))


def create_app(state: SandboxState) -> FastAPI:
    """A FastAPI app serving ``state`` as GitHub would."""
    app = FastAPI(title="GitHub sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.sandbox = state
    for router in (*REST_ROUTERS, lfs.router):
        app.include_router(router)
    app.add_exception_handler(SandboxError, handle_sandbox_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.middleware("http")(sandbox_middleware)
    return app
