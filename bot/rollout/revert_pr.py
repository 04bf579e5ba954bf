"""After a rollback, open the pull request that puts the model back in Git, exactly once.

A rollback changes what serves in production, but the base branch still holds the rolled-back
version, and the next deploy would bring it back. This effect commits the model directory as
it was in the merge commit's first parent (the previous production version; absent there, the
directory is deleted) on top of the base branch, on the branch `shipyard/revert-pr<N>-<model>`,
and opens a pull request of it against the base branch. A person merges it.

One one-shot outbox effect per (repo, merge commit, model). A tree or commit object made twice
is harmless (nothing points at it); a branch and a pull request are not, so every run looks
first: an open pull request from the branch into the base is the answer; a branch whose tip
is this effect's commit (its trailer, the revert's tree, the base head as parent) is reused; a
branch holding anything else, or a revert of a base that has moved since, is moved to a new
commit (the branch name is Shipyard's own). GitHub's own words never reach a person: a refusal
is one of the fixed sentences below, the details go to the log.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from bot.github.api import GitHubError, InstallationClient
from bot.github.branch_names import REVERT_PREFIX, revert_branch
from bot.github.objects import PullRequest, Tree
from bot.runtime import outbox
from evaluators.escaping import code_span, one_line

log = logging.getLogger(__name__)

KIND = "revert_pr"
BRANCH_PREFIX = REVERT_PREFIX
MAX_TITLE = 256  # GitHub refuses longer pull request titles
MAX_BODY = 65536  # ... and longer bodies
MAX_PATH = 1024
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SHA = re.compile(r"[0-9a-f]{40}")
_BRANCH_UNSAFE = re.compile(r"(^[/.-])|([/.]$)|\.\.|//|@\{|\.lock$|/\.|[\x00-\x20~^:?*\[\\\x7f]")

REFUSED = {
    "merge": "The merged commit could not be read, so no revert pull request was opened.",
    "base": "The base branch could not be read, so no revert pull request was opened.",
    "model": "The model directory could not be read as a directory, so no revert pull request "
    "was opened.",
    "write": "GitHub refused the revert commit or its branch, so no revert pull request was "
    "opened.",
    "pull": "GitHub refused to open the revert pull request.",
}
FORBIDDEN = (
    "Shipyard may not write to this repository: opening a revert pull request needs the "
    "App's contents and pull requests write permissions."
)


# -- what is written (pure) ---------------------------------------------------------------------


def branch_name(pr_number: int, model: str) -> str:
    return revert_branch(pr_number, model)


def revert_marker(key: str) -> str:
    """The hidden marker in the pull request body (a digest: nothing in the key can close it)."""
    return f"<!-- shipyard:revert:{_digest(key)} -->"


def commit_trailer(key: str) -> str:
    """The trailer that makes a revert commit recognisable as this effect's."""
    return f"Shipyard-Revert: {_digest(key)}"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def pull_title(title: str, *, model: str, pr_number: int) -> str:
    """The caller's title on one line within GitHub's limit (a default when it is empty)."""
    text = one_line(title, max_length=MAX_TITLE)
    return text or one_line(f"Revert {model} to its version before #{pr_number}", max_length=120)


def pull_body(
    body: str,
    *,
    marker: str,
    model_dir: str,
    base_ref: str,
    pr_number: int,
    changed_since: bool,
) -> str:
    """The caller's body, bounded and unable to hide what follows it, with the marker last."""
    note = ""
    if changed_since:
        note = (
            f"**Note:** {code_span(model_dir, max_length=200)} was changed on "
            f"{code_span(base_ref, max_length=200)} after #{pr_number} was merged. This pull "
            f"request still restores the version from before #{pr_number}, the one serving in "
            "production now; review the later changes before merging.\n\n"
        )
    tail = f"\n\n{marker}"
    # An unclosed `<!--` in the caller's text would hide the note and the marker.
    text = body.replace("<!--", "&lt;!--")
    room = MAX_BODY - len(note) - len(tail)
    if len(text) > room:
        text = text[: room - 1] + "…"
    return note + text + tail


def commit_message(*, model: str, model_dir: str, pr_number: int, trailer: str) -> str:
    """The revert commit's message: which directory, which pull request, and the trailer."""
    path = one_line(model_dir, max_length=200)
    return (
        f"Revert {path} to its version before #{pr_number}\n\n"
        f"Shipyard rolled {one_line(model, max_length=100)} back in production; this puts the "
        f"model directory back as it was before #{pr_number} was merged, so Git matches what "
        f"serves.\n\n{trailer}\n"
    )


def check_model_dir(model_dir: str) -> str:
    """A relative directory path inside the repository (ValueError otherwise)."""
    parts = model_dir.split("/")
    if (
        not model_dir
        or len(model_dir) > MAX_PATH
        or any(part in ("", ".", "..", ".git") for part in parts)
        or any(ord(char) < 0x20 for char in model_dir)
    ):
        raise ValueError("model_dir must be a relative directory inside the repository")
    return model_dir


# -- the effect ---------------------------------------------------------------------------------


def open_revert(
    rt: outbox.Runtime,
    *,
    installation_id: int,
    repo: str,
    base_ref: str,
    merge_sha: str,
    model_dir: str,
    pr_number: int,
    model: str,
    title: str,
    body: str,
) -> outbox.EffectState:
    """Open (once) the pull request restoring `model_dir` as it was before `merge_sha`; carried
    out now if it can be, else by the outbox's background retries."""
    check_model_dir(model_dir)
    if not _SHA.fullmatch(merge_sha):
        raise ValueError("merge_sha must be a full commit sha")
    if not base_ref or len(base_ref) > 255 or _BRANCH_UNSAFE.search(base_ref):
        raise ValueError("base_ref must be a branch name")
    key = outbox.effect_key(KIND, repo, merge_sha, model)
    payload = {
        "repo": repo,
        "base_ref": base_ref,
        "merge_sha": merge_sha,
        "model_dir": model_dir,
        "pr_number": pr_number,
        "model": model,
        "branch": branch_name(pr_number, model),
        "title": pull_title(title, model=model, pr_number=pr_number),
        "body": body[:MAX_BODY],
        "marker": revert_marker(key),
        "trailer": commit_trailer(key),
    }
    return outbox.submit(rt, key=key, kind=KIND, payload=payload, installation_id=installation_id)


def revert_pr_number(state: outbox.EffectState) -> int | None:
    """The revert pull request's number once it is open (None while pending, failed, or when
    the base branch already held the previous version)."""
    number = state.result.get("number") if state.done else None
    return int(number) if number is not None else None


class _Refusal(Exception):
    def __init__(self, step: str, status: int, detail: str) -> None:
        super().__init__(f"{step}: {status}")
        self.step, self.status, self.detail = step, status, detail


class _GH(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Sha(_GH):
    sha: str


class _GitCommit(_GH):
    message: str
    tree: _Sha


class _Commit(_GH):
    sha: str
    commit: _GitCommit
    parents: list[_Sha]


class _RefObject(_GH):
    object: _Sha


def _run(attempt: outbox.Attempt) -> dict[str, Any]:
    """One attempt; a transient GitHubError propagates, so the outbox tries again later."""
    p = attempt.payload
    try:
        return _Revert(attempt.client(), p).run()
    except _Refusal as exc:
        log.warning(
            "revert pull request for %s (merge %s) refused at %s: %s %s",
            p["repo"],
            p["merge_sha"][:12],
            exc.step,
            exc.status,
            exc.detail[:200],
        )
        forbidden = exc.status in (401, 403)
        message = FORBIDDEN if forbidden else REFUSED[exc.step]
        raise outbox.EffectRefused(exc.status, message) from None


class _Revert:
    """One run: find what an earlier run left, then do only what is missing."""

    def __init__(self, client: InstallationClient, payload: dict[str, Any]) -> None:
        self.client = client
        self.p = payload
        self.repo: str = payload["repo"]
        self.base: str = payload["base_ref"]
        self.branch: str = payload["branch"]

    def run(self) -> dict[str, Any]:
        found = self._open_pull()
        if found is not None:
            return found
        merged = self._commit(self.p["merge_sha"], step="merge")
        if not merged.parents:
            raise _Refusal("merge", 422, "the merge commit has no parent")
        previous = self._commit(merged.parents[0].sha, step="merge")
        ref = _RefObject.model_validate(
            self._ask("base", "GET", f"/repos/{self.repo}/git/ref/heads/{quote(self.base)}")
        )
        head = self._commit(ref.object.sha, step="base")
        model_dir: str = self.p["model_dir"]
        old = self._subtree(previous.commit.tree.sha, model_dir)
        now = self._subtree(head.commit.tree.sha, model_dir)
        if now == old:
            return {"number": None, "url": None, "already_reverted": True}
        changed_since = now != self._subtree(merged.commit.tree.sha, model_dir)
        self._put_branch(head, old)
        return self._open(changed_since)

    # -- reading ------------------------------------------------------------------------------

    def _ask(self, step: str, method: str, path: str, **kw: Any) -> Any:
        try:
            return self.client.request(method, path, **kw)
        except GitHubError as exc:
            if outbox.is_transient(exc):
                raise
            raise _Refusal(step, exc.status, exc.github_message) from None

    def _commit(self, ref: str, *, step: str) -> _Commit:
        return _Commit.model_validate(
            self._ask(step, "GET", f"/repos/{self.repo}/commits/{quote(ref)}")
        )

    def _subtree(self, root: str, path: str) -> str | None:
        """The sha of the directory at `path` under the tree `root`, None when it is absent."""
        sha = root
        for part in path.split("/"):
            tree = Tree.model_validate(
                self._ask("model", "GET", f"/repos/{self.repo}/git/trees/{sha}")
            )
            if tree.truncated:
                raise _Refusal("model", 422, "tree listing truncated")
            entry = next((e for e in tree.tree if e.path == part), None)
            if entry is None:
                return None
            if entry.type != "tree":
                raise _Refusal("model", 422, "not a directory")
            sha = entry.sha
        return sha

    def _open_pull(self) -> dict[str, Any] | None:
        """An open pull request from our branch into the base (an earlier run's), if any."""
        owner = self.repo.split("/", 1)[0]
        found = self._ask(
            "pull",
            "GET",
            f"/repos/{self.repo}/pulls",
            params={
                "head": f"{owner}:{self.branch}",
                "base": self.base,
                "state": "open",
                "per_page": 100,
            },
        )
        for raw in found if isinstance(found, list) else []:
            pull = PullRequest.model_validate(raw)
            if (pull.head.ref, pull.base.ref, pull.state) == (self.branch, self.base, "open"):
                return {"number": pull.number, "url": pull.html_url}
        return None

    # -- writing ------------------------------------------------------------------------------

    def _branch_tip(self) -> str | None:
        try:
            raw = self.client.request("GET", f"/repos/{self.repo}/git/ref/heads/{self.branch}")
        except GitHubError as exc:
            if outbox.is_transient(exc):
                raise
            if exc.status == 404:
                return None
            raise _Refusal("write", exc.status, exc.github_message) from None
        return _RefObject.model_validate(raw).object.sha

    def _put_branch(self, head: _Commit, old_tree: str | None) -> None:
        """Point our branch at a revert commit on `head`, reusing one an earlier run made."""
        # Creating a tree is idempotent (content-addressed), so it is made before looking.
        tree = _Sha.model_validate(
            self._ask(
                "write",
                "POST",
                f"/repos/{self.repo}/git/trees",
                json={
                    "base_tree": head.commit.tree.sha,
                    # A sub-tree replaces the whole directory; sha null deletes it.
                    "tree": [
                        {
                            "path": self.p["model_dir"],
                            "mode": "040000",
                            "type": "tree",
                            "sha": old_tree,
                        }
                    ],
                },
            )
        ).sha
        tip = self._branch_tip()
        if tip is not None:
            left = self._commit(tip, step="write")
            if (
                self.p["trailer"] in left.commit.message
                and left.commit.tree.sha == tree
                and [parent.sha for parent in left.parents] == [head.sha]
            ):
                # An earlier run's commit, and still exactly this revert of this base: reuse
                # it. A trailer alone is not enough (anyone can copy it onto other content).
                return
        message = commit_message(
            model=self.p["model"],
            model_dir=self.p["model_dir"],
            pr_number=self.p["pr_number"],
            trailer=self.p["trailer"],
        )
        commit = self._ask(
            "write",
            "POST",
            f"/repos/{self.repo}/git/commits",
            json={"message": message, "tree": tree, "parents": [head.sha]},
        )
        sha = _Sha.model_validate(commit).sha
        if tip is None:
            try:
                self.client.request(
                    "POST",
                    f"/repos/{self.repo}/git/refs",
                    json={"ref": f"refs/heads/{self.branch}", "sha": sha},
                )
                return
            except GitHubError as exc:
                if outbox.is_transient(exc):
                    raise
                if exc.status != 422:  # 422: it exists after all (made since we looked)
                    raise _Refusal("write", exc.status, exc.github_message) from None
        # Not this revert (someone else's, or on a base that has moved since), or made since we
        # looked: the branch name is Shipyard's, so it is moved to the revert.
        self._ask(
            "write",
            "PATCH",
            f"/repos/{self.repo}/git/refs/heads/{self.branch}",
            json={"sha": sha, "force": True},
        )

    def _open(self, changed_since: bool) -> dict[str, Any]:
        body = pull_body(
            self.p["body"],
            marker=self.p["marker"],
            model_dir=self.p["model_dir"],
            base_ref=self.base,
            pr_number=self.p["pr_number"],
            changed_since=changed_since,
        )
        try:
            created = self.client.request(
                "POST",
                f"/repos/{self.repo}/pulls",
                json={
                    "title": self.p["title"],
                    "head": self.branch,
                    "base": self.base,
                    "body": body,
                },
            )
        except GitHubError as exc:
            if outbox.is_transient(exc):
                raise  # in doubt: the next run looks for it first
            found = self._open_pull() if exc.status == 422 else None
            if found is not None:
                return found
            raise _Refusal("pull", exc.status, exc.github_message) from None
        pull = PullRequest.model_validate(created)
        return {"number": pull.number, "url": pull.html_url, "changed_since": changed_since}


outbox.register(KIND, _run)
