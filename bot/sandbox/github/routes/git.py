"""Git data routes: contents, trees, blobs, commits, refs and branches, from real git objects.

Reads, and the writes a client needs to commit without a clone: create a tree on a base tree,
a commit of it, a branch at that commit, and move a branch.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Request
from fastapi.responses import JSONResponse

from bot.sandbox.github.auth import require_repo
from bot.sandbox.github.models import Repo
from bot.sandbox.github.state import SandboxError
from bot.sandbox.github.wire import json_body, renderer_of, respond, sandbox_of

router = APIRouter()
Authorization = Annotated[str | None, Header()]


def _repo(request: Request, owner: str, repo: str, authorization: str | None) -> Repo:
    return require_repo(sandbox_of(request), authorization, owner, repo)


def _commit_sha(repo: Repo, ref: str) -> str:
    sha = repo.resolve(ref)
    if sha is None:
        raise SandboxError(404, "No commit found for SHA: " + ref)
    return sha


@router.get("/repos/{owner}/{repo}")
async def get_repository(
    request: Request, owner: str, repo: str, authorization: Authorization = None
) -> JSONResponse:
    """The repository, naming its default branch."""
    found = _repo(request, owner, repo, authorization)
    with sandbox_of(request).lock:
        return respond(request, renderer_of(request).full_repository(found))


@router.get("/repos/{owner}/{repo}/contents/{path:path}")
async def get_content(
    request: Request, owner: str, repo: str, path: str, authorization: Authorization = None
) -> JSONResponse:
    """A file (base64, empty above 1 MB) or a directory listing, at ``?ref=`` or the default."""
    found = _repo(request, owner, repo, authorization)
    render = renderer_of(request)
    with sandbox_of(request).lock:
        ref = request.query_params.get("ref") or found.default_branch
        commit = found.objects.commits[_commit_sha(found, ref)]
        path = path.strip("/")
        entry = found.objects.lookup(commit.tree, path)
        if entry is None:
            raise SandboxError(404, "Not Found")
        if not entry.is_tree:
            return respond(request, render.content_file(found, path, sha=entry.sha, ref=ref))
        listing = [
            render.content_item(
                found,
                f"{path}/{child.name}".lstrip("/"),
                sha=child.sha,
                is_dir=child.is_tree,
                ref=ref,
            )
            for child in found.objects.trees[entry.sha]
        ]
        return respond(request, listing)


@router.get("/repos/{owner}/{repo}/git/trees/{tree_sha:path}")
async def get_tree(
    request: Request, owner: str, repo: str, tree_sha: str, authorization: Authorization = None
) -> JSONResponse:
    """A tree by sha, or the tree of a commit or branch; ``?recursive=`` lists everything."""
    found = _repo(request, owner, repo, authorization)
    with sandbox_of(request).lock:
        if tree_sha not in found.objects.trees:
            commit_sha = found.resolve(tree_sha)
            if commit_sha is None:
                raise SandboxError(404, "Not Found")
            tree_sha = found.objects.commits[commit_sha].tree
        recursive = "recursive" in request.query_params
        return respond(request, renderer_of(request).tree(found, tree_sha, recursive=recursive))


@router.get("/repos/{owner}/{repo}/git/blobs/{file_sha}")
async def get_blob(
    request: Request, owner: str, repo: str, file_sha: str, authorization: Authorization = None
) -> JSONResponse:
    """A blob, base64-encoded (works for files too big for the contents API)."""
    found = _repo(request, owner, repo, authorization)
    with sandbox_of(request).lock:
        if file_sha not in found.objects.blobs:
            raise SandboxError(404, "Not Found")
        return respond(request, renderer_of(request).blob(found, file_sha))


@router.get("/repos/{owner}/{repo}/git/ref/{ref:path}")
async def get_ref(
    request: Request, owner: str, repo: str, ref: str, authorization: Authorization = None
) -> JSONResponse:
    """A branch ref, named ``heads/<branch>``."""
    found = _repo(request, owner, repo, authorization)
    with sandbox_of(request).lock:
        branch = ref.removeprefix("heads/")
        if not ref.startswith("heads/") or branch not in found.branches:
            raise SandboxError(404, "Not Found")
        return respond(request, renderer_of(request).ref(found, branch))


@router.get("/repos/{owner}/{repo}/commits/{ref:path}")
async def get_commit(
    request: Request, owner: str, repo: str, ref: str, authorization: Authorization = None
) -> JSONResponse:
    """A commit by sha or branch name."""
    found = _repo(request, owner, repo, authorization)
    with sandbox_of(request).lock:
        commit = found.objects.commits[_commit_sha(found, ref)]
        return respond(request, renderer_of(request).commit(found, commit))


@router.get("/repos/{owner}/{repo}/branches/{branch:path}")
async def get_branch(
    request: Request, owner: str, repo: str, branch: str, authorization: Authorization = None
) -> JSONResponse:
    """A branch and its tip commit."""
    found = _repo(request, owner, repo, authorization)
    with sandbox_of(request).lock:
        if branch not in found.branches:
            raise SandboxError(404, "Branch not found")
        return respond(request, renderer_of(request).branch(found, branch))


# -- writes -----------------------------------------------------------------------------------


@router.post("/repos/{owner}/{repo}/git/trees")
async def create_tree(
    request: Request,
    owner: str,
    repo: str,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """A new tree: ``base_tree`` with the given entries set or (``sha: null``) deleted."""
    found = _repo(request, owner, repo, authorization)
    state = sandbox_of(request)
    entries = body.get("tree")
    if not isinstance(entries, list):
        raise SandboxError(422, "Invalid request.\n\ntree is required")
    with state.lock:
        sha = state.create_tree(found.full_name, base_tree=body.get("base_tree"), entries=entries)
        tree = renderer_of(request).tree(found, sha, recursive=False)
        return respond(request, tree, status=201)


@router.post("/repos/{owner}/{repo}/git/commits")
async def create_commit(
    request: Request,
    owner: str,
    repo: str,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """A new commit object of a tree with its parents; no branch moves."""
    found = _repo(request, owner, repo, authorization)
    state = sandbox_of(request)
    if not isinstance(body.get("message"), str) or not isinstance(body.get("tree"), str):
        raise SandboxError(422, "Invalid request.\n\nmessage and tree are required")
    with state.lock:
        sha = state.create_git_commit(
            found.full_name,
            tree=body["tree"],
            parents=list(body.get("parents") or []),
            message=body["message"],
            author=body.get("author"),
            committer=body.get("committer"),
        )
        commit = found.objects.commits[sha]
        return respond(request, renderer_of(request).git_commit(found, commit), status=201)


@router.post("/repos/{owner}/{repo}/git/refs")
async def create_ref(
    request: Request,
    owner: str,
    repo: str,
    body: Annotated[Any, Depends(json_body)],
    authorization: Authorization = None,
) -> JSONResponse:
    """A new branch at a commit; 422 "Reference already exists" when it does."""
    found = _repo(request, owner, repo, authorization)
    state = sandbox_of(request)
    with state.lock:
        branch = state.create_ref(found.full_name, str(body["ref"]), str(body["sha"]))
        return respond(request, renderer_of(request).ref(found, branch), status=201)


@router.patch("/repos/{owner}/{repo}/git/refs/{ref:path}")
async def update_ref(
    request: Request,
    owner: str,
    repo: str,
    ref: str,
    body: Annotated[Any, Depends(json_body)],
    background: BackgroundTasks,
    authorization: Authorization = None,
) -> JSONResponse:
    """Move a branch (``heads/<name>``): fast-forward only unless ``force``."""
    found = _repo(request, owner, repo, authorization)
    state = sandbox_of(request)
    with state.lock:
        branch = state.update_ref(
            found.full_name, ref, str(body["sha"]), force=body.get("force") is True
        )
        answer = respond(request, renderer_of(request).ref(found, branch))
    background.add_task(state.flush_events)  # open pulls from the branch got `synchronize`
    return answer
