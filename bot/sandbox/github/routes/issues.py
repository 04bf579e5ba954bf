"""Issue comment routes: list, create, edit, and react, as the App's bot user."""

from __future__ import annotations

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


@router.get("/repos/{owner}/{repo}/issues/{issue_number}/comments")
async def list_comments(
    request: Request, owner: str, repo: str, issue_number: int, authorization: Authorization = None
) -> JSONResponse:
    """Comments of a pull request's conversation, oldest first, paginated."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        if issue_number not in found.pulls:
            raise SandboxError(404, "Not Found")
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
