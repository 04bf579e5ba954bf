"""Read a model registry through the GitHub API: policy and production from the default branch,
candidates from the PR head."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

from bot.github.api import GitHubError, InstallationClient
from bot.github.lfs import LfsError, LfsPointer, fetch_objects, lfs_endpoint, parse_pointer
from bot.github.objects import Blob, Branch, ContentFile, PullFile, PullRequest, Repository, Tree
from evaluators.bounded import check_model_directory
from evaluators.policy import Policy, PolicyError, parse_policy

POLICY_PATH = ".shipyard.yml"
MAX_BLOB_BYTES = 100 * 1024 * 1024  # GitHub's blob API limit
MAX_LISTED_PULL_FILES = 3000  # GitHub lists no more of a PR's files than this
KEEP_OUTSIDE_PATHS = 50  # shown paths outside model dirs; the count is kept in full


@dataclass(frozen=True)
class Production:
    """The registry's default branch and its head: where policy, approvers and baselines live."""

    branch: str
    sha: str


@dataclass(frozen=True)
class PullChanges:
    """Everything a PR head changes, or why that could not be known in full."""

    complete: bool
    problem: str = ""
    models: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    outside_count: int = 0
    policy_changed: bool = False


@dataclass
class ModelFiles:
    """A model directory at one commit: path (relative to the dir) -> bytes."""

    directory: str
    files: dict[str, bytes] = field(default_factory=dict)
    lfs: dict[str, LfsPointer] = field(default_factory=dict)
    lfs_errors: dict[str, str] = field(default_factory=dict)
    exists: bool = True
    refused: str | None = None  # the directory as a whole is too large to read


def read_production(client: InstallationClient, repo: str) -> Production:
    """The default branch's head, asked of GitHub now (never taken from the PR or a payload)."""
    default = client.get(f"/repos/{repo}", Repository).default_branch
    branch = client.get(f"/repos/{repo}/branches/{default}", Branch)
    return Production(branch=default, sha=branch.commit.sha)


def read_policy(client: InstallationClient, repo: str, base_sha: str) -> Policy:
    """`.shipyard.yml` as it is on a commit of the default branch; absent means defaults."""
    content = client.get_optional(
        f"/repos/{repo}/contents/{POLICY_PATH}", ContentFile, ref=base_sha
    )
    if content is None:
        return parse_policy(None)
    if content.type != "file":
        raise PolicyError(f"{POLICY_PATH} must be a file")
    return parse_policy(_content_bytes(client, repo, content))


def model_of(path: str, models_root: str) -> str | None:
    """The model whose directory `<root>/<name>/` holds `path`, or None."""
    prefix = models_root.rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    name, slash, _ = path[len(prefix) :].partition("/")
    return name if slash and name not in ("", ".", "..") else None


def changed_models(files: list[PullFile], models_root: str) -> list[str]:
    """Model names whose directory `<root>/<name>/` the PR touches (renames count both ends)."""
    names = {
        name
        for f in files
        for path in (f.filename, f.previous_filename)
        if path and (name := model_of(path, models_root)) is not None
    }
    return sorted(names)


def classify_changes(
    files: list[PullFile], models_root: str, *, listed_in_full: bool
) -> PullChanges:
    """Split changed paths into model directories and everything else (renames count twice)."""
    if not listed_in_full:
        return PullChanges(
            complete=False,
            problem=f"GitHub lists at most {MAX_LISTED_PULL_FILES:,} changed files of a pull "
            "request and this one changes more, so what it changes cannot be checked in full; "
            "split it into smaller pull requests",
        )
    outside: dict[str, None] = {}  # ordered and de-duplicated
    policy_changed = False
    for f in files:
        for path in (f.filename, f.previous_filename):
            if not path or model_of(path, models_root) is not None:
                continue
            outside[path] = None
            policy_changed |= path == POLICY_PATH
    return PullChanges(
        complete=True,
        models=tuple(changed_models(files, models_root)),
        outside=tuple(list(outside)[:KEEP_OUTSIDE_PATHS]),
        outside_count=len(outside),
        policy_changed=policy_changed,
    )


def read_changes(
    client: InstallationClient, repo: str, pull: PullRequest, models_root: str
) -> PullChanges:
    """The head's changed paths, complete or marked incomplete with the reason (fail closed)."""
    try:
        files = list_pull_files(client, repo, pull.number)
    except (GitHubError, ValueError):
        return PullChanges(
            complete=False,
            problem="GitHub did not return the list of changed files; push again or "
            "comment /retest later",
        )
    expected = pull.changed_files
    # GitHub stops listing at 3,000: fewer listed than the PR says it changes is incomplete.
    listed_in_full = expected is not None and len(files) >= expected
    return classify_changes(files, models_root, listed_in_full=listed_in_full)


def list_pull_files(client: InstallationClient, repo: str, number: int) -> list[PullFile]:
    raw = client.paginate(f"/repos/{repo}/pulls/{number}/files")
    return [PullFile.model_validate(item) for item in raw]


def read_model_dir(
    client: InstallationClient, repository: Repository, sha: str, directory: str
) -> ModelFiles:
    """Every file under `directory` at `sha`, with LFS pointers resolved and verified."""
    repo = repository.full_name
    tree_sha = subtree_sha(client, repo, sha, directory)
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


def first_parent(client: InstallationClient, repo: str, sha: str) -> str | None:
    """The commit `sha` was made on (for a merge: the base branch before it)."""
    found = client.request("GET", f"/repos/{repo}/commits/{sha}")
    parents = found.get("parents") if isinstance(found, dict) else None
    if not isinstance(parents, list) or not parents or not isinstance(parents[0], dict):
        return None
    parent = parents[0].get("sha")
    return parent if isinstance(parent, str) else None


def subtree_sha(client: InstallationClient, repo: str, sha: str, directory: str) -> str | None:
    """The tree sha of `directory` at commit `sha`, None when it is absent."""
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


def materialise(files: ModelFiles, target: Path) -> Path:
    """Write a model directory read from GitHub to `target`; files whose LFS object failed
    verification are left out, and no entry may escape `target`."""
    for rel, data in files.files.items():
        if rel in files.lfs_errors:
            continue
        path = (target / rel).resolve()
        if not path.is_relative_to(target.resolve()):
            continue  # a tree entry cannot escape the directory; never trust it to
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    target.mkdir(parents=True, exist_ok=True)
    return target
