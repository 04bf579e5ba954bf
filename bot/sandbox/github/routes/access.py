"""Access routes: a collaborator's permission on a repository and team memberships."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from bot.sandbox.github.auth import require_org, require_repo
from bot.sandbox.github.state import SandboxError
from bot.sandbox.github.wire import renderer_of, respond, sandbox_of

router = APIRouter()
Authorization = Annotated[str | None, Header()]


@router.get("/repos/{owner}/{repo}/collaborators/{username}/permission")
async def get_permission(
    request: Request, owner: str, repo: str, username: str, authorization: Authorization = None
) -> JSONResponse:
    """``permission`` (admin/write/read/none) and ``role_name`` of a user on a repository."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    if username.lower() not in state.users:
        raise SandboxError(404, "Not Found")
    role = state.permission_of(found.full_name, username)
    login = state.user(username).login
    return respond(request, renderer_of(request).permission(login, role))


@router.get("/orgs/{org}/teams/{team_slug}/memberships/{username}")
async def get_team_membership(
    request: Request, org: str, team_slug: str, username: str, authorization: Authorization = None
) -> JSONResponse:
    """An active membership, or 404 when the user is not in the team."""
    state = sandbox_of(request)
    require_org(state, authorization, org)
    role = state.team_role(org, team_slug, username)
    if role is None:
        raise SandboxError(404, "Not Found")
    url = f"{state.base_url}/orgs/{org}/teams/{team_slug}/memberships/{username}"
    return respond(request, {"url": url, "role": role, "state": "active"})
