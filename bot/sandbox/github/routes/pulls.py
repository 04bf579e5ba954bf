"""Pull request routes: list, open, get, changed files, and merge."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Request
from fastapi.responses import JSONResponse

from bot.sandbox.github.auth import require_repo
from bot.sandbox.github.models import Pull, Repo
from bot.sandbox.github.state import SandboxError
from bot.sandbox.github.wire import (
    error_body,
    json_body,
    paginate,
    renderer_of,
    respond,
    sandbox_of,
)

router = APIRouter()
Authorization = Annotated[str | None, Header()]


def _pull(repo: Repo, number: int) -> Pull:
    pull = repo.pulls.get(number)
    if pull is None:
        raise SandboxError(404, "Not Found")
    return pull


@router.get("/repos/{owner}/{repo}/pulls")
async def list_pulls(
    request: Request, owner: str, repo: str, authorization: Authorization = None
) -> JSONResponse:
    """Pulls filtered by ``state`` (default open), ``head`` (``owner:branch``) and ``base``."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    query = request.query_params
    wanted_state = query.get("state", "open")
    with state.lock:
        pulls = [
            p
            for p in sorted(found.pulls.values(), key=lambda p: -p.number)
            if wanted_state in ("all", p.state)
            and ("head" not in query or _same_head(query["head"], found, p))
            and ("base" not in query or query["base"] == p.base_ref)
        ]
        page, headers = paginate(request, pulls)
        render = renderer_of(request)
        return respond(request, [render.pull_simple(found, p) for p in page], headers=headers)


def _same_head(wanted: str, repo: Repo, pull: Pull) -> bool:
    # GitHub's filter is `user:ref-name`; every sandbox pull comes from the repository itself.
    owner, _, branch = wanted.rpartition(":")
    return branch == pull.head_ref and (not owner or owner.lower() == repo.owner.lower())


@router.post("/repos/{owner}/{repo}/pulls")
async def create_pull(
    request: Request,
    owner: str,
    repo: str,
    body: Annotated[Any, Depends(json_body)],
    background: BackgroundTasks,
    authorization: Authorization = None,
) -> JSONResponse:
    """Open a pull request as the App's bot; 422 when one is already open for the branch."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    if not isinstance(body.get("title"), str):
        raise SandboxError(422, "Invalid request.\n\ntitle is required (issue is not supported)")
    with state.lock:
        pull = state.create_pull(
            found.full_name,
            head=str(body["head"]),
            base=str(body["base"]),
            title=body["title"],
            body=str(body.get("body") or ""),
            draft=body.get("draft") is True,
        )
        answer = respond(request, renderer_of(request).pull(found, pull), status=201)
    background.add_task(state.flush_events)  # pull_request.opened
    return answer


@router.get("/repos/{owner}/{repo}/pulls/{pull_number}")
async def get_pull(
    request: Request, owner: str, repo: str, pull_number: int, authorization: Authorization = None
) -> JSONResponse:
    """One pull request with its head, base and merge state."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        return respond(request, renderer_of(request).pull(found, _pull(found, pull_number)))


@router.get("/repos/{owner}/{repo}/pulls/{pull_number}/files")
async def list_pull_files(
    request: Request, owner: str, repo: str, pull_number: int, authorization: Authorization = None
) -> JSONResponse:
    """The files a pull request changes, paginated; like GitHub, at most 3,000 of them."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        pull = _pull(found, pull_number)
        listed = state.pull_files(found.full_name, pull_number)[: state.max_listed_pull_files]
        page, headers = paginate(request, listed)
        render = renderer_of(request)
        files = [render.pull_file(found, pull.head_sha, change) for change in page]
        return respond(request, files, headers=headers)


@router.put("/repos/{owner}/{repo}/pulls/{pull_number}/merge")
async def merge_pull(
    request: Request,
    owner: str,
    repo: str,
    pull_number: int,
    body: Annotated[Any, Depends(json_body)],
    background: BackgroundTasks,
    authorization: Authorization = None,
) -> JSONResponse:
    """Merge a pull request, pinned to ``sha`` when given."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    _pull(found, pull_number)
    method = body.get("merge_method", "merge")
    try:
        sha = state.merge_pull(
            found.full_name,
            pull_number,
            sha=body.get("sha"),
            merge_method=method,
            commit_title=body.get("commit_title"),
            commit_message=body.get("commit_message"),
        )
    except SandboxError as exc:
        if exc.status in (405, 409):
            return respond(request, error_body(exc.status, exc.message), status=exc.status)
        raise
    background.add_task(state.flush_events)
    message = "Pull Request successfully merged"
    return respond(request, {"sha": sha, "merged": True, "message": message})
