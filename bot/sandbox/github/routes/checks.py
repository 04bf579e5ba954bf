"""Check run routes: create, update, get, and list for a ref, with GitHub's limits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from bot.sandbox.github.auth import require_repo
from bot.sandbox.github.models import CheckRun, Repo
from bot.sandbox.github.state import SandboxError
from bot.sandbox.github.wire import json_body, paginate, renderer_of, respond, sandbox_of

router = APIRouter()
Authorization = Annotated[str | None, Header()]

# GitHub rejects longer output.summary / output.text with 422.
MAX_OUTPUT_CHARS = 65535
MAX_ANNOTATIONS_PER_REQUEST = 50


def _timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _checked_output(output: dict[str, Any] | None) -> dict[str, Any] | None:
    if output is None:
        return None
    for key in ("summary", "text"):
        text = output.get(key)
        if text is not None and len(text) > MAX_OUTPUT_CHARS:
            raise SandboxError(
                422,
                f"Invalid request.\n\nOnly {MAX_OUTPUT_CHARS} characters are allowed; "
                f"{len(text)} were supplied.",
            )
    if len(output.get("annotations", [])) > MAX_ANNOTATIONS_PER_REQUEST:
        raise SandboxError(422, "Invalid request.\n\nOnly 50 annotations are allowed per request.")
    return output


def _apply(run: CheckRun, body: dict[str, Any], now: datetime) -> CheckRun:
    output = _checked_output(body.get("output"))
    if output is not None:
        run.output = dict(output)
    for key in ("name", "details_url", "external_id"):
        if key in body:
            setattr(run, key, body[key])
    if "actions" in body:
        run.actions = list(body["actions"])
    if "started_at" in body:
        run.started_at = _timestamp(body["started_at"])
    if "conclusion" in body:
        # Giving a conclusion completes the run, as on GitHub.
        run.conclusion, run.status = body["conclusion"], "completed"
    elif "status" in body:
        run.status = body["status"]
    if "completed_at" in body:
        run.completed_at = _timestamp(body["completed_at"])
    if run.status == "completed":
        if run.conclusion is None:
            raise SandboxError(
                422, "Invalid request.\n\n`conclusion` is required when `status` is `completed`."
            )
        run.completed_at = run.completed_at or now
    if body.get("conclusion") == "stale":
        raise SandboxError(422, "Invalid request.\n\nOnly GitHub can set a conclusion of stale.")
    return run


def _run(repo: Repo, check_run_id: int) -> CheckRun:
    run = repo.check_runs.get(check_run_id)
    if run is None:
        raise SandboxError(404, "Not Found")
    return run


@router.post("/repos/{owner}/{repo}/check-runs")
async def create_check_run(
    request: Request,
    owner: str,
    repo: str,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """Create a check run on a commit of the repository."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        if body["head_sha"] not in found.objects.commits:
            raise SandboxError(
                422, "Invalid request.\n\nNo commit found for SHA: " + body["head_sha"]
            )
        now = state.now()
        run = CheckRun(
            id=state.new_id(),
            name=body["name"],
            head_sha=body["head_sha"],
            status="queued",
            conclusion=None,
            started_at=now,
            completed_at=None,
            output={},
            details_url=None,
            external_id=None,
        )
        _apply(run, body, now)
        state.save_check_run(found.full_name, run)
        return respond(request, renderer_of(request).check_run(found, run), status=201)


@router.get("/repos/{owner}/{repo}/check-runs/{check_run_id}")
async def get_check_run(
    request: Request, owner: str, repo: str, check_run_id: int, authorization: Authorization = None
) -> JSONResponse:
    """One check run."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        return respond(request, renderer_of(request).check_run(found, _run(found, check_run_id)))


@router.patch("/repos/{owner}/{repo}/check-runs/{check_run_id}")
async def update_check_run(
    request: Request,
    owner: str,
    repo: str,
    check_run_id: int,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """Update a check run; validation happens on a copy so a 422 changes nothing."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    with state.lock:
        current = _run(found, check_run_id)
        updated = _apply(
            CheckRun(**{**vars(current), "output": dict(current.output)}), body, state.now()
        )
        state.save_check_run(found.full_name, updated)
        return respond(request, renderer_of(request).check_run(found, updated))


@router.get("/repos/{owner}/{repo}/commits/{ref}/check-runs")
async def list_check_runs_for_ref(
    request: Request, owner: str, repo: str, ref: str, authorization: Authorization = None
) -> JSONResponse:
    """Check runs on a commit (sha or branch), filtered by ``check_name``/``status``/``filter``."""
    state = sandbox_of(request)
    found = require_repo(state, authorization, owner, repo)
    query = request.query_params
    with state.lock:
        sha = found.resolve(ref)
        if sha is None:
            raise SandboxError(422, "No commit found for SHA: " + ref)
        runs = state.check_runs_for(found.full_name, sha)
        if query.get("filter", "latest") == "latest":
            # Newest first, so the first run of each name is the latest one.
            latest: dict[str, CheckRun] = {}
            for run in runs:
                latest.setdefault(run.name, run)
            runs = list(latest.values())
        runs = [
            r
            for r in runs
            if query.get("check_name", r.name) == r.name
            and query.get("status", r.status) == r.status
        ]
        page, headers = paginate(request, runs)
        render = renderer_of(request)
        payload = {
            "total_count": len(runs),
            "check_runs": [render.check_run(found, r) for r in page],
        }
        return respond(request, payload, headers=headers)
