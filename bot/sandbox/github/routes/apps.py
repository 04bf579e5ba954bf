"""GitHub App routes: the App itself, installation tokens, and a repository's installation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from bot.sandbox.github.auth import require_app_jwt
from bot.sandbox.github.render import iso
from bot.sandbox.github.state import SandboxError
from bot.sandbox.github.wire import json_body, renderer_of, respond, sandbox_of

router = APIRouter()
Authorization = Annotated[str | None, Header()]


@router.get("/app")
async def get_app(request: Request, authorization: Authorization = None) -> JSONResponse:
    """The authenticated App."""
    state = sandbox_of(request)
    require_app_jwt(state, authorization)
    return respond(request, renderer_of(request).app())


@router.post("/app/installations/{installation_id}/access_tokens")
async def create_installation_token(
    request: Request,
    installation_id: int,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """Mint an installation access token valid for one hour."""
    state = sandbox_of(request)
    require_app_jwt(state, authorization)
    if installation_id not in state.installations:
        raise SandboxError(404, "Not Found")
    token = state.issue_token(installation_id)
    permissions = body.get("permissions") or {
        "checks": "write",
        "contents": "write",
        "issues": "write",
        "metadata": "read",
        "pull_requests": "write",
        "members": "read",
    }
    payload = {
        "token": token.value,
        "expires_at": iso(token.expires_at),
        "permissions": permissions,
        "repository_selection": "selected" if body.get("repositories") else "all",
    }
    return respond(request, payload, status=201)


@router.get("/repos/{owner}/{repo}/installation")
async def get_repo_installation(
    request: Request, owner: str, repo: str, authorization: Authorization = None
) -> JSONResponse:
    """The App's installation that covers a repository."""
    state = sandbox_of(request)
    require_app_jwt(state, authorization)
    found = state.repos.get(f"{owner}/{repo}".lower())
    if found is None:
        raise SandboxError(404, "Not Found")
    return respond(request, renderer_of(request).installation(found.installation_id))
