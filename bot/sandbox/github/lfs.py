"""Git LFS batch API (download only), as the LFS server of a GitHub repository speaks it."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from bot.sandbox.github.auth import require_repo
from bot.sandbox.github.models import Violation
from bot.sandbox.github.state import SandboxError
from bot.sandbox.github.wire import error_body, sandbox_of

LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
DOWNLOAD_EXPIRES_IN_S = 3600

# Not REST routes: the LFS server lives beside the git remote, outside GitHub's OpenAPI.
router = APIRouter()


def _lfs_error(status: int, message: str) -> JSONResponse:
    headers = {"LFS-Authenticate": 'Basic realm="GitHub"'} if status == 401 else None
    return JSONResponse(
        error_body(status, message),
        status_code=status,
        media_type=LFS_MEDIA_TYPE,
        headers=headers,
    )


@router.post("/{owner}/{repo}.git/info/lfs/objects/batch")
async def batch(
    request: Request,
    owner: str,
    repo: str,
    authorization: Annotated[str | None, Header()] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Answer a download batch: an href per known object, a 404 error per unknown one."""
    state = sandbox_of(request)
    if accept is None or LFS_MEDIA_TYPE not in accept:
        with state.lock:
            state.violations.append(
                Violation("POST", request.url.path, "lfs-accept", (f"Accept: {accept}",))
            )
        return _lfs_error(406, "Accept header must be " + LFS_MEDIA_TYPE)
    try:
        found = require_repo(state, authorization, owner, repo)
    except SandboxError as exc:
        if exc.status == 404 and authorization is None:
            return _lfs_error(401, "Credentials needed")
        return _lfs_error(exc.status, exc.message)
    try:
        body: dict[str, Any] = json.loads(await request.body())
    except ValueError:
        return _lfs_error(422, "Unable to parse request")
    if body.get("operation") != "download":
        return _lfs_error(422, "The sandbox LFS server only supports download")
    objects = []
    with state.lock:
        for wanted in body.get("objects", []):
            oid, size = str(wanted.get("oid", "")), wanted.get("size")
            stored = found.lfs.get(oid)
            if stored is None:
                objects.append(
                    {
                        "oid": oid,
                        "size": size,
                        "error": {"code": 404, "message": "Object does not exist"},
                    }
                )
                continue
            grant = secrets.token_urlsafe(24)
            state.lfs_download_grants[grant] = (found.full_name, oid)
            objects.append(
                {
                    "oid": oid,
                    "size": stored.size,
                    "authenticated": True,
                    "actions": {
                        "download": {
                            "href": f"{state.base_url}/lfs/objects/{oid}",
                            "header": {"Authorization": f"RemoteAuth {grant}"},
                            "expires_in": DOWNLOAD_EXPIRES_IN_S,
                        }
                    },
                }
            )
    return JSONResponse(
        {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
        media_type=LFS_MEDIA_TYPE,
    )


@router.get("/lfs/objects/{oid}")
async def download(
    request: Request, oid: str, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """The object's bytes, for the header a batch response handed out."""
    state = sandbox_of(request)
    grant = (authorization or "").removeprefix("RemoteAuth ")
    with state.lock:
        target = state.lfs_download_grants.get(grant)
        if target is None or target[1] != oid:
            return _lfs_error(401, "Bad credentials")
        stored = state.repo(target[0]).lfs[oid]
        return Response(stored.served, media_type="application/octet-stream")
