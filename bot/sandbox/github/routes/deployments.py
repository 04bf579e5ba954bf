"""Deployment routes: create and list deployments, create and list their statuses.

As on GitHub: a deployment needs a ref that resolves to a commit; `required_contexts: []`
skips the commit-status check (Shipyard always passes it); listing filters by sha, ref, task
and environment, newest first; a transient environment's `inactive` status is what GitHub
shows as destroyed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from bot.sandbox.github.auth import require_repo
from bot.sandbox.github.models import Deployment, DeploymentStatus, Repo
from bot.sandbox.github.state import SandboxError
from bot.sandbox.github.wire import json_body, paginate, renderer_of, respond, sandbox_of

router = APIRouter()
Authorization = Annotated[str | None, Header()]

MAX_STATUS_DESCRIPTION = 140  # GitHub's documented limit
_ACTIVE = ("success",)


def _deployment(repo: Repo, deployment_id: int) -> Deployment:
    found = repo.deployments.get(deployment_id)
    if found is None:
        raise SandboxError(404, "Not Found")
    return found


@router.post("/repos/{owner}/{repo}/deployments")
async def create_deployment(
    request: Request,
    owner: str,
    repo: str,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """Create a deployment of a ref."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        sha = found.resolve(body["ref"])
        if sha is None:
            raise SandboxError(422, "No ref found for: " + body["ref"])
        if body.get("required_contexts") != []:
            # Shipyard deploys before its own checks pass; GitHub would answer 409 here when
            # contexts are unverified. The sandbox insists on the explicit empty list.
            raise SandboxError(409, "Conflict: Commit status checks failed for " + body["ref"])
        environment = body.get("environment", "production")
        deployment = Deployment(
            id=state.new_id(),
            sha=sha,
            ref=body["ref"],
            task=body.get("task", "deploy"),
            environment=environment,
            description=body.get("description", ""),
            payload=body.get("payload", {}),
            transient_environment=bool(body.get("transient_environment", False)),
            production_environment=bool(
                body.get("production_environment", environment == "production")
            ),
            created_at=state.now(),
        )
        found.deployments[deployment.id] = deployment
        return respond(request, renderer_of(request).deployment(found, deployment), status=201)


@router.get("/repos/{owner}/{repo}/deployments")
async def list_deployments(
    request: Request, owner: str, repo: str, authorization: Authorization = None
) -> JSONResponse:
    """Deployments, newest first, filtered by sha, ref, task and environment."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    query = request.query_params
    with state.lock:
        chosen = [
            d
            for d in sorted(found.deployments.values(), key=lambda d: -d.id)
            if all(
                query.get(key) in (None, getattr(d, key))
                for key in ("sha", "ref", "task", "environment")
            )
        ]
        page, headers = paginate(request, chosen)
        render = renderer_of(request)
        return respond(request, [render.deployment(found, d) for d in page], headers=headers)


@router.post("/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
async def create_deployment_status(
    request: Request,
    owner: str,
    repo: str,
    deployment_id: int,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """Add a status; with `auto_inactive` (default) earlier successful deployments to the same
    non-transient, non-production environment become inactive, as on GitHub."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        deployment = _deployment(found, deployment_id)
        description = body.get("description", "")
        if len(description) > MAX_STATUS_DESCRIPTION:
            raise SandboxError(422, "Invalid request.\n\ndescription is too long (maximum is 140)")
        now = state.now()
        status = DeploymentStatus(
            id=state.new_id(),
            state=body["state"],
            description=description,
            environment=body.get("environment", deployment.environment),
            environment_url=body.get("environment_url", ""),
            log_url=body.get("log_url", body.get("target_url", "")),
            created_at=now,
        )
        deployment.statuses.append(status)
        if status.state == "success" and body.get("auto_inactive", True):
            for other in found.deployments.values():
                if (
                    other.id != deployment.id
                    and other.environment == deployment.environment
                    and not other.transient_environment
                    and not other.production_environment
                    and other.statuses
                    and other.statuses[-1].state in _ACTIVE
                ):
                    other.statuses.append(
                        DeploymentStatus(
                            id=state.new_id(),
                            state="inactive",
                            description="",
                            environment=other.environment,
                            environment_url="",
                            log_url="",
                            created_at=now,
                        )
                    )
        rendered = renderer_of(request).deployment_status(found, deployment, status)
        return respond(request, rendered, status=201)


@router.get("/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
async def list_deployment_statuses(
    request: Request, owner: str, repo: str, deployment_id: int, authorization: Authorization = None
) -> JSONResponse:
    """A deployment's statuses, newest first."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        deployment = _deployment(found, deployment_id)
        page, headers = paginate(request, list(reversed(deployment.statuses)))
        render = renderer_of(request)
        return respond(
            request, [render.deployment_status(found, deployment, s) for s in page], headers=headers
        )
