"""Read a model registry through the GitHub API: policy from the base, candidates from the head."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from bot.github_api import GitHubError, InstallationClient
from bot.github_types import Blob, ContentFile, PullFile, Repository, Tree
from bot.lfs import LfsError, LfsPointer, fetch_objects, lfs_endpoint, parse_pointer
from evaluators.bounded import check_model_directory
from evaluators.policy import Policy, PolicyError, parse_policy

POLICY_PATH = ".shipyard.yml"
MAX_BLOB_BYTES = 100 * 1024 * 1024  # GitHub's blob API limit


@dataclass
class ModelFiles:
    """A model directory at one commit: path (relative to the dir) -> bytes."""

    directory: str
    files: dict[str, bytes] = field(default_factory=dict)
    lfs: dict[str, LfsPointer] = field(default_factory=dict)
    lfs_errors: dict[str, str] = field(default_factory=dict)
    exists: bool = True
    refused: str | None = None  # the directory as a whole is too large to read


def read_policy(client: InstallationClient, repo: str, base_sha: str) -> Policy:
    """`.shipyard.yml` as it is on the base commit; absent means defaults."""
    content = client.get_optional(
        f"/repos/{repo}/contents/{POLICY_PATH}", ContentFile, ref=base_sha
    )
    if content is None:
        return parse_policy(None)
    if content.type != "file":
        raise PolicyError(f"{POLICY_PATH} must be a file")
    return parse_policy(_content_bytes(client, repo, content))


def changed_models(files: list[PullFile], models_root: str) -> list[str]:
    """Model names whose directory `<root>/<name>/` the PR touches (renames count both ends)."""
    prefix = models_root.rstrip("/") + "/"
    names = set()
    for f in files:
        for path in (f.filename, f.previous_filename):
            if path and path.startswith(prefix):
                rest = path[len(prefix) :]
                if "/" in rest:
                    names.add(rest.split("/", 1)[0])
    return sorted(names)


def list_pull_files(client: InstallationClient, repo: str, number: int) -> list[PullFile]:
    raw = client.paginate(f"/repos/{repo}/pulls/{number}/files")
    return [PullFile.model_validate(item) for item in raw]


def read_model_dir(
    client: InstallationClient, repository: Repository, sha: str, directory: str
) -> ModelFiles:
    """Every file under `directory` at `sha`, with LFS pointers resolved and verified."""
    repo = repository.full_name
    tree_sha = _subtree_sha(client, repo, sha, directory)
    result = ModelFiles(directory=directory)
    if tree_sha is None:
        result.exists = False
        return result
    tree = client.get(f"/repos/{repo}/git/trees/{tree_sha}", Tree, recursive=1)
    if tree.truncated:
        raise GitHubError("GET", f"trees/{tree_sha}", 0, "tree too large to list")
    # Caps before any blob is fetched (and again with LFS sizes before any object is).
    result.refused = check_model_directory(e.size or 0 for e in tree.tree if e.type == "blob")
    if result.refused:
        return result
    for entry in tree.tree:
        if entry.type != "blob":
            continue
        if entry.mode == "120000":
            result.files[entry.path] = b""  # symlinks are refused by the gate, never followed
            result.lfs_errors[entry.path] = "symbolic links are not allowed in a model directory"
            continue
        if entry.size is not None and entry.size > MAX_BLOB_BYTES:
            result.lfs_errors[entry.path] = "file is larger than 100 MB and not in Git LFS"
            continue
        blob = client.get(f"/repos/{repo}/git/blobs/{entry.sha}", Blob)
        data = (
            base64.b64decode(blob.content) if blob.encoding == "base64" else blob.content.encode()
        )
        result.files[entry.path] = data
        pointer = parse_pointer(data)
        if pointer is not None:
            result.lfs[entry.path] = pointer
    result.refused = check_model_directory(
        result.lfs[p].size if p in result.lfs else len(data) for p, data in result.files.items()
    )
    if result.refused:
        result.files.clear()
        result.lfs.clear()
        return result
    _resolve_lfs(client, repository, result)
    return result


def _resolve_lfs(client: InstallationClient, repository: Repository, result: ModelFiles) -> None:
    if not result.lfs:
        return
    clone_url = repository.clone_url or f"{client_web_url(client)}/{repository.full_name}.git"
    pointers = list({p.oid: p for p in result.lfs.values()}.values())
    try:
        objects = fetch_objects(
            endpoint=lfs_endpoint(clone_url), token=client.installation_token(), pointers=pointers
        )
    except LfsError as exc:
        for path in result.lfs:
            result.lfs_errors[path] = str(exc)
        return
    for path, pointer in result.lfs.items():
        result.files[path] = objects[pointer.oid]


def client_web_url(client: InstallationClient) -> str:
    """github.com for the public API; the same host for GHES and the sandbox."""
    api = client.api_url
    if api == "https://api.github.com":
        return "https://github.com"
    return api.removesuffix("/api/v3")


def _subtree_sha(client: InstallationClient, repo: str, sha: str, directory: str) -> str | None:
    current = sha
    for part in directory.strip("/").split("/"):
        tree = client.get(f"/repos/{repo}/git/trees/{current}", Tree)
        match = next((e for e in tree.tree if e.path == part and e.type == "tree"), None)
        if match is None:
            return None
        current = match.sha
    return current


def _content_bytes(client: InstallationClient, repo: str, content: ContentFile) -> bytes:
    if content.encoding == "base64" and content.content is not None:
        return base64.b64decode(content.content)
    # Files over 1 MB come without content: fetch the blob instead.
    blob = client.get(f"/repos/{repo}/git/blobs/{content.sha}", Blob)
    return base64.b64decode(blob.content)
