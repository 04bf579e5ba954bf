"""Issue routes: issues (open, read, edit, list) and their comments, as the App's bot user.

Issues and pull requests share one series of numbers; `/issues/{n}` names either, and the
issue list holds pull requests too, marked by a `pull_request` block, as on GitHub.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Request
from fastapi.responses import JSONResponse

from bot.sandbox.github.auth import require_repo
from bot.sandbox.github.state import SandboxError, SandboxState
from bot.sandbox.github.wire import json_body, paginate, renderer_of, respond, sandbox_of

router = APIRouter()
Authorization = Annotated[str | None, Header()]

# GitHub rejects longer comment bodies with 422.
MAX_COMMENT_CHARS = 65536


def _checked_body(text: str) -> str:
    if len(text) > MAX_COMMENT_CHARS:
        raise SandboxError(
            422,
            "Validation Failed",
            errors=[
                {
                    "resource": "IssueComment",
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {MAX_COMMENT_CHARS} characters)",
                }
            ],
        )
    return text


def _actor(state: SandboxState) -> str:
    # Installation tokens act as the App's bot user.
    return state.app.bot_login


def _text(value: Any) -> str | None:
    # GitHub takes a title as a string or a number.
    return None if value is None else str(value)


def _label_names(raw: Any) -> list[str] | None:
    if raw is None:
        return None
    return [str(item.get("name") or "") if isinstance(item, dict) else str(item) for item in raw]


@router.get("/repos/{owner}/{repo}/issues")
async def list_issues(
    request: Request, owner: str, repo: str, authorization: Authorization = None
) -> JSONResponse:
    """Issues and pull requests by ``state``, ``labels``, ``creator``, ``since``; sorted, paged."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    query = request.query_params
    unsupported = sorted(
        set(query) & {"milestone", "assignee", "mentioned", "type", "issue_field_values"}
    )
    if unsupported:  # loudly, rather than answering as if the filter held
        raise SandboxError(422, f"the sandbox does not filter issues by {unsupported[0]}")
    labels = [name for name in query.get("labels", "").split(",") if name.strip()]
    try:
        since = datetime.fromisoformat(query["since"]) if "since" in query else None
    except ValueError as exc:
        raise SandboxError(422, "Invalid request.\n\nsince must be a timestamp") from exc
    with state.lock:
        items = state.issues_listed(
            found.full_name,
            state=query.get("state", "open"),
            labels=labels,
            creator=query.get("creator"),
            sort=query.get("sort", "created"),
            direction=query.get("direction", "desc"),
            since=since,
        )
        page, headers = paginate(request, items)
        render = renderer_of(request)
        return respond(request, [render.issue(found, item) for item in page], headers=headers)


@router.post("/repos/{owner}/{repo}/issues")
async def create_issue(
    request: Request,
    owner: str,
    repo: str,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """Open an issue as the App's bot user; unknown labels are created."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        issue = state.create_issue(
            found.full_name,
            title=_text(body.get("title")) or "",
            body=str(body.get("body") or ""),
            labels=_label_names(body.get("labels")) or [],
            author_login=_actor(state),
        )
        payload = renderer_of(request).issue(found, issue)
    return respond(request, payload, status=201, headers={"Location": payload["url"]})


@router.get("/repos/{owner}/{repo}/issues/{issue_number}")
async def get_issue(
    request: Request, owner: str, repo: str, issue_number: int, authorization: Authorization = None
) -> JSONResponse:
    """One issue, or a pull request seen as an issue."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        item = state.issue_or_pull(found.full_name, issue_number)
        return respond(request, renderer_of(request).issue(found, item))


@router.patch("/repos/{owner}/{repo}/issues/{issue_number}")
async def update_issue(
    request: Request,
    owner: str,
    repo: str,
    issue_number: int,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """Edit title, body, labels; close (with a reason) or reopen."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        item = state.update_issue(
            found.full_name,
            issue_number,
            title=_text(body.get("title")),
            body=body.get("body"),
            state=body.get("state"),
            state_reason=body.get("state_reason"),
            labels=_label_names(body.get("labels")),
            actor=_actor(state),
        )
        return respond(request, renderer_of(request).issue(found, item))


@router.get("/repos/{owner}/{repo}/issues/{issue_number}/comments")
async def list_comments(
    request: Request, owner: str, repo: str, issue_number: int, authorization: Authorization = None
) -> JSONResponse:
    """Comments of an issue's or a pull request's conversation, oldest first, paginated."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        state.issue_or_pull(found.full_name, issue_number)  # 404 / 410 as on GitHub
        page, headers = paginate(request, state.comments_on(found.full_name, issue_number))
        render = renderer_of(request)
        return respond(request, [render.comment(found, c) for c in page], headers=headers)


@router.post("/repos/{owner}/{repo}/issues/{issue_number}/comments")
async def create_comment(
    request: Request,
    owner: str,
    repo: str,
    issue_number: int,
    body: Annotated[Any, Depends(json_body)],
    background: BackgroundTasks,
    authorization: Authorization = None,
) -> JSONResponse:
    """Comment as the App's bot user."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        comment_id = state.create_comment(
            found.full_name, issue_number, _checked_body(body["body"]), _actor(state)
        )
        payload = renderer_of(request).comment(found, found.comments[comment_id])
    background.add_task(state.flush_events)
    headers = {"Location": payload["url"]}
    return respond(request, payload, status=201, headers=headers)


@router.patch("/repos/{owner}/{repo}/issues/comments/{comment_id}")
async def update_comment(
    request: Request,
    owner: str,
    repo: str,
    comment_id: int,
    body: Annotated[Any, Depends(json_body)],
    background: BackgroundTasks,
    authorization: Authorization = None,
) -> JSONResponse:
    """Edit a comment's body."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        comment = state.update_comment(
            found.full_name, comment_id, _checked_body(body["body"]), actor=_actor(state)
        )
        payload = renderer_of(request).comment(found, comment)
    background.add_task(state.flush_events)
    return respond(request, payload)


@router.post("/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
async def create_reaction(
    request: Request,
    owner: str,
    repo: str,
    comment_id: int,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """React to a comment: 201 when new, 200 when the same reaction already exists."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    reaction, created = state.react(found.full_name, comment_id, body["content"], _actor(state))
    return respond(request, renderer_of(request).reaction(reaction), status=201 if created else 200)
