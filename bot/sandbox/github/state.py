"""In-memory, inspectable state of the GitHub sandbox and the Python API tests drive it with."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.sandbox.github.diff import changed_files, merged_files
from bot.sandbox.github.git_objects import TREE_MODE, ObjectStore, Signature, TreeEntry
from bot.sandbox.github.models import (
    AccessToken,
    AppInfo,
    CheckRun,
    InjectedFailure,
    Installation,
    Issue,
    IssueComment,
    Label,
    LfsObject,
    Permission,
    Pull,
    Reaction,
    RecordedRequest,
    Repo,
    Review,
    User,
    Violation,
)
from bot.sandbox.github.webhooks import WebhookSender, build_event

Clock = Callable[[], datetime]
TOKEN_LIFETIME = timedelta(hours=1)
DEFAULT_EMAIL_DOMAIN = "users.noreply.sandbox.invalid"
MAX_PULL_TITLE = 256  # GitHub's limits on a pull request's title and body
MAX_PULL_BODY = 65536
MAX_ISSUE_TITLE = 256  # ... and on an issue's
MAX_ISSUE_BODY = 65536
ISSUE_SORTS = ("created", "updated", "comments")
BLOB_MODES = ("100644", "100755", "120000")
# What git check-ref-format refuses in a branch name (the parts the sandbox needs to know).
_BAD_REF = re.compile(
    r"(^[/.-])|([/.]$)|(\.\.)|(//)|(@\{)|(\.lock$)|(/\.)|[\x00-\x20~^:?*\[\\\x7f]"
)


class SandboxError(Exception):
    """A request GitHub would refuse: carries the status and GitHub's message."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def utc_now() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


def valid_branch_name(name: str) -> bool:
    """Whether git would accept ``name`` as a branch (``refs/heads/<name>``)."""
    return bool(name) and len(name) <= 255 and _BAD_REF.search(name) is None


def _invalid(field: str) -> SandboxError:
    errors = [{"resource": "PullRequest", "field": field, "code": "invalid"}]
    return SandboxError(422, "Validation Failed", errors=errors)


def _custom(message: str) -> SandboxError:
    errors = [{"resource": "PullRequest", "code": "custom", "message": message}]
    return SandboxError(422, "Validation Failed", errors=errors)


def _tree_entry(store: ObjectStore, raw: Mapping[str, Any]) -> tuple[str, TreeEntry | None]:
    """One entry of a create-tree request: its path and what to put there (None deletes)."""
    path = str(raw.get("path") or "")
    parts = path.split("/")
    kind, mode = raw.get("type"), raw.get("mode")
    if any(part in ("", ".", "..", ".git") for part in parts):
        raise SandboxError(422, f"tree.path {path[:100]!r} is invalid")
    if not ((kind == "tree" and mode == "040000") or (kind == "blob" and mode in BLOB_MODES)):
        raise SandboxError(422, "Invalid tree info")  # submodules are not kept either
    if "content" in raw:
        if raw.get("sha") is not None or kind != "blob":
            raise SandboxError(422, "Must supply either tree.sha or tree.content, not both")
        sha = store.put_blob(str(raw["content"]).encode())
        return path, TreeEntry(parts[-1], str(mode), sha)
    if "sha" not in raw:
        raise SandboxError(422, "Must supply tree.sha or tree.content")
    if raw["sha"] is None:
        return path, None
    sha = str(raw["sha"])
    if sha not in (store.trees if kind == "tree" else store.blobs):
        raise SandboxError(422, f"tree.sha {sha[:40]} is not a valid {kind}")
    return path, TreeEntry(parts[-1], TREE_MODE if kind == "tree" else str(mode), sha)


def _issue_error(field: str, code: str = "invalid", message: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"resource": "Issue", "code": code, "field": field}
    if message is not None:
        error["message"] = message
    return error


def _check_issue_text(title: str, body: str) -> None:
    """GitHub's 422s for an issue's title and body."""
    if not title.strip():
        blank = _issue_error("title", "missing_field")
        raise SandboxError(422, "Validation Failed", errors=[blank])
    for field, text, limit in (("title", title, MAX_ISSUE_TITLE), ("body", body, MAX_ISSUE_BODY)):
        if len(text) > limit:
            message = f"{field} is too long (maximum is {limit} characters)"
            raise SandboxError(
                422, "Validation Failed", errors=[_issue_error(field, "custom", message)]
            )


def _issues_enabled(repo: Repo) -> None:
    if not repo.has_issues:
        raise SandboxError(410, "Issues are disabled for this repo")


def _plain_issue(repo: Repo, number: int) -> Issue:
    _issues_enabled(repo)
    issue = repo.issues.get(number)
    if issue is None:
        raise SandboxError(404, "Not Found")
    return issue


def lfs_pointer(oid: str, size: int) -> bytes:
    """The Git LFS pointer file for an object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


class SandboxState:
    """Everything the GitHub sandbox knows; safe to use from tests while the server runs."""

    def __init__(
        self,
        *,
        app_id: int,
        app_public_key_pem: str,
        app_slug: str = "shipyard",
        app_name: str = "Shipyard",
        app_owner: str = "acme",
        clock: Clock = utc_now,
        base_url: str = "http://sandbox.invalid",
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.base_url = base_url
        self.app = AppInfo(app_id, app_slug, app_name, app_owner, app_public_key_pem)
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.repos: dict[str, Repo] = {}
        self.users: dict[str, User] = {}
        self.teams: dict[tuple[str, str], dict[str, str]] = {}
        self.violations: list[Violation] = []
        self.response_violations: list[Violation] = []
        self.requests: list[RecordedRequest] = []
        self.failures: list[InjectedFailure] = []
        # A test's fault hook, called (off the event loop) before each request is served:
        # it may block (a hung GitHub) or return a status to answer instead (an outage).
        self.on_request: Callable[[str, str], int | None] | None = None
        self.webhooks = WebhookSender()
        self.deliver_bot_comment_events = True
        # GitHub lists at most 3,000 files of a pull; tests lower it rather than commit 3,001.
        self.max_listed_pull_files = 3000
        self.lfs_download_grants: dict[str, tuple[str, str]] = {}
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._next_id = 1000
        self.user(self.app.bot_login)

    # -- plumbing -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The sandbox clock, to the second."""
        return self.clock().astimezone(UTC).replace(microsecond=0)

    def new_id(self) -> int:
        """A fresh numeric id."""
        with self.lock:
            self._next_id += 1
            return self._next_id

    @contextmanager
    def events(self) -> Iterator[None]:
        """Deliver the webhooks queued inside the block once it ends (outside the lock)."""
        yield
        self.flush_events()

    def queue_event(self, event: str, action: str | None, **context: Any) -> None:
        """Queue the webhook GitHub would send for this change (if webhooks are configured)."""
        if self.webhooks.url is None:
            return
        payload = build_event(self, event, action, **context)
        with self.lock:
            self._outbox.append((event, payload))

    def flush_events(self) -> None:
        """Deliver every queued webhook, in order."""
        while True:
            with self.lock:
                if not self._outbox:
                    return
                event, payload = self._outbox.pop(0)
            self.webhooks.deliver(
                event,
                payload,
                installation_target_id=self.app.app_id,
            )

    def hold_events(self) -> list[tuple[str, dict[str, Any]]]:
        """Take the queued webhooks without sending them, to deliver them late (as GitHub may)."""
        with self.lock:
            held, self._outbox = self._outbox, []
        return held

    def release_events(self, held: list[tuple[str, dict[str, Any]]]) -> None:
        """Send webhooks taken by ``hold_events``, after whatever is queued now."""
        with self.lock:
            self._outbox.extend(held)
        self.flush_events()

    def configure_webhooks(self, url: str, secret: str) -> None:
        """Send webhooks to ``url``, signed with ``secret``."""
        self.webhooks.url = url
        self.webhooks.secret = secret

    def redeliver(self, delivery_id: str) -> int | None:
        """Send a recorded delivery again with the same delivery id; returns the status."""
        return self.webhooks.redeliver(delivery_id).status_code

    def inject_failure(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` instead of the real route."""
        default_message = {
            429: "API rate limit exceeded",
            403: "API rate limit exceeded for installation.",
        }.get(status, "Server Error")
        failure = InjectedFailure(
            method=method.upper(),
            path_regex=path_regex,
            status=status,
            headers=dict(headers or {}),
            body=dict(body or {"message": default_message}),
            remaining=times,
        )
        with self.lock:
            self.failures.append(failure)

    def take_failure(self, method: str, path: str) -> InjectedFailure | None:
        """Consume the first injected failure matching a request, if any."""
        with self.lock:
            for failure in self.failures:
                if failure.method == method.upper() and re.search(failure.path_regex, path):
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self.failures.remove(failure)
                    return failure
        return None

    # -- accounts and access --------------------------------------------------------------------

    def user(self, login: str) -> User:
        """The account named ``login`` (created on first use; ``*[bot]`` logins are bots)."""
        with self.lock:
            key = login.lower()
            if key not in self.users:
                kind = "Bot" if login.endswith("[bot]") else "User"
                self.users[key] = User(login=login, id=self.new_id(), type=kind)
            return self.users[key]

    def add_installation(self, account_login: str, *, installation_id: int | None = None) -> int:
        """Install the App on an account; returns the installation id."""
        with self.lock:
            inst_id = installation_id if installation_id is not None else self.new_id()
            self.installations[inst_id] = Installation(inst_id, account_login)
            self.user(account_login)
            return inst_id

    def issue_token(self, installation_id: int) -> AccessToken:
        """Mint an installation access token valid for one hour."""
        with self.lock:
            token = AccessToken(
                value="ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b"),
                installation_id=installation_id,
                expires_at=self.now() + TOKEN_LIFETIME,
            )
            self.tokens[token.value] = token
            return token

    @property
    def tokens_issued(self) -> int:
        """How many installation tokens were minted (tests assert the bot caches them)."""
        return len(self.tokens)

    def set_permission(self, full_name: str, login: str, role: str | Permission) -> None:
        """Give ``login`` a role on a repository (admin, maintain, write, triage, read, none)."""
        with self.lock:
            self.repo(full_name).permissions[login.lower()] = Permission(role)
            self.user(login)

    def permission_of(self, full_name: str, login: str) -> Permission:
        """The role ``login`` holds on a repository."""
        with self.lock:
            return self.repo(full_name).permissions.get(login.lower(), Permission.NONE)

    def add_team_member(
        self, org: str, team_slug: str, login: str, *, role: str = "member"
    ) -> None:
        """Make ``login`` an active member (or maintainer) of ``org/team_slug``."""
        with self.lock:
            self.teams.setdefault((org.lower(), team_slug.lower()), {})[login.lower()] = role
            self.user(login)

    def team_role(self, org: str, team_slug: str, login: str) -> str | None:
        """``member``/``maintainer`` when ``login`` is in the team, else None."""
        with self.lock:
            return self.teams.get((org.lower(), team_slug.lower()), {}).get(login.lower())

    # -- repositories and git -------------------------------------------------------------------

    def create_repo(
        self,
        full_name: str,
        *,
        installation_id: int,
        default_branch: str = "main",
        files: Mapping[str, bytes] | None = None,
    ) -> Repo:
        """Create a repository with one initial commit on its default branch."""
        owner, name = full_name.split("/")
        with self.lock:
            repo = Repo(self.new_id(), owner, name, installation_id, default_branch)
            self.repos[full_name.lower()] = repo
            tree = repo.objects.write_files(
                files if files is not None else {"README.md": b"# " + name.encode() + b"\n"}
            )
            sig = self._signature(owner)
            repo.branches[default_branch] = repo.objects.put_commit(
                tree=tree, parents=(), author=sig, committer=sig, message="Initial commit"
            )
            self.user(owner)
            return repo

    def repo(self, full_name: str) -> Repo:
        """The repository ``owner/name`` (KeyError when unknown; names are case-insensitive)."""
        return self.repos[full_name.lower()]

    def _signature(self, login: str) -> Signature:
        return Signature(login, f"{login}@{DEFAULT_EMAIL_DOMAIN}", self.now())

    def create_branch(self, full_name: str, branch: str, *, from_ref: str | None = None) -> str:
        """Create ``branch`` at ``from_ref`` (default: the default branch); returns its sha."""
        with self.lock:
            repo = self.repo(full_name)
            sha = repo.resolve(from_ref or repo.default_branch)
            if sha is None:
                raise KeyError(from_ref)
            repo.branches[branch] = sha
            return sha

    def commit(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, bytes | None],
        *,
        message: str = "Update files",
        author: str = "octocat",
    ) -> str:
        """Commit changes (``None`` deletes a path) on ``branch``; creates the branch if new."""
        with self.lock:
            repo = self.repo(full_name)
            if branch not in repo.branches:
                self.create_branch(full_name, branch)
            parent = repo.branches[branch]
            current = repo.objects.read_files(repo.objects.commits[parent].tree)
            for path, data in files.items():
                if data is None:
                    current.pop(path, None)
                else:
                    current[path] = data
            sig = self._signature(author)
            sha = repo.objects.put_commit(
                tree=repo.objects.write_files(current),
                parents=(parent,),
                author=sig,
                committer=sig,
                message=message,
            )
            repo.branches[branch] = sha
            return sha

    def push(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, bytes | None],
        *,
        message: str = "Update files",
        author: str = "octocat",
    ) -> str:
        """Commit on ``branch`` as a push: open pulls from it move and get ``synchronize``."""
        with self.events():
            with self.lock:
                repo = self.repo(full_name)
                sha = self.commit(full_name, branch, files, message=message, author=author)
                self._head_moved(repo, branch, sha, sender=author)
            return sha

    def _head_moved(self, repo: Repo, branch: str, sha: str, *, sender: str) -> None:
        """Open pulls from ``branch`` follow it to ``sha`` and get ``synchronize``."""
        for pull in repo.pulls.values():
            if pull.head_ref == branch and pull.state == "open" and pull.head_sha != sha:
                before = pull.head_sha
                pull.head_sha = sha
                pull.updated_at = self.now()
                self.queue_event(
                    "pull_request",
                    "synchronize",
                    repo=repo,
                    pull=pull,
                    sender=sender,
                    before=before,
                    after=sha,
                )

    # -- git data written through the REST API (trees, commits, refs) ---------------------------

    def create_tree(
        self, full_name: str, *, base_tree: str | None, entries: list[Mapping[str, Any]]
    ) -> str:
        """POST git/trees: ``base_tree`` with each entry's path set in turn (``sha: null`` deletes).

        A nested path (``models/churn``) edits inside the sub-trees on its way; an entry of
        type ``tree`` replaces the whole directory at its path.
        """
        with self.lock:
            store = self.repo(full_name).objects
            if base_tree is not None and base_tree not in store.trees:
                raise SandboxError(422, "base_tree is not a valid tree")
            root: str | None = base_tree
            for raw in entries:
                path, entry = _tree_entry(store, raw)
                root = store.edit_tree(root, path, entry)
            return root if root is not None else store.put_tree([])

    def create_git_commit(
        self,
        full_name: str,
        *,
        tree: str,
        parents: list[str],
        message: str,
        author: Mapping[str, Any] | None = None,
        committer: Mapping[str, Any] | None = None,
    ) -> str:
        """POST git/commits: a commit object (no ref moves); the token's bot is its author."""
        with self.lock:
            store = self.repo(full_name).objects
            if tree not in store.trees:
                raise SandboxError(422, "Tree SHA does not exist")
            if any(parent not in store.commits for parent in parents):
                raise SandboxError(422, "Parent SHA does not exist or is not a commit object")
            who = self._given_signature(author, self._signature(self.app.bot_login))
            by = self._given_signature(committer, who)
            return store.put_commit(
                tree=tree, parents=tuple(parents), author=who, committer=by, message=message
            )

    def _given_signature(self, given: Mapping[str, Any] | None, default: Signature) -> Signature:
        if not given:
            return default
        when = given.get("date")
        try:
            moment = datetime.fromisoformat(str(when).replace("Z", "+00:00")) if when else None
        except ValueError as exc:
            raise SandboxError(422, "Invalid request.\n\ndate is not a timestamp") from exc
        return Signature(str(given["name"]), str(given["email"]), moment or self.now())

    def create_ref(self, full_name: str, ref: str, sha: str) -> str:
        """POST git/refs: a new branch ``refs/heads/<name>`` at a commit; returns the name."""
        with self.lock:
            repo = self.repo(full_name)
            if not ref.startswith("refs/") or ref.count("/") < 2:
                raise SandboxError(
                    422, "Reference name must start with 'refs/' and have two slashes"
                )
            branch = ref.removeprefix("refs/heads/")
            if branch == ref or not valid_branch_name(branch):
                raise SandboxError(422, "Reference name is invalid")  # the sandbox keeps branches
            if sha not in repo.objects.commits:
                raise SandboxError(422, "Object does not exist")
            if branch in repo.branches:
                raise SandboxError(422, "Reference already exists")
            repo.branches[branch] = sha
            return branch

    def update_ref(
        self, full_name: str, ref: str, sha: str, *, force: bool = False, actor: str | None = None
    ) -> str:
        """PATCH git/refs/heads/<name>: move a branch (fast-forward unless ``force``).

        Open pulls from the branch follow it; their ``synchronize`` webhooks are queued for the
        caller to flush.
        """
        with self.lock:
            repo = self.repo(full_name)
            branch = ref.removeprefix("refs/").removeprefix("heads/")
            if not ref.removeprefix("refs/").startswith("heads/") or branch not in repo.branches:
                raise SandboxError(422, "Reference does not exist")
            if sha not in repo.objects.commits:
                raise SandboxError(422, "Object does not exist")
            if not force and repo.branches[branch] not in repo.objects.ancestors(sha):
                raise SandboxError(422, "Update is not a fast forward")
            repo.branches[branch] = sha
            self._head_moved(repo, branch, sha, sender=actor or self.app.bot_login)
            return branch

    def store_lfs_object(
        self, full_name: str, content: bytes, *, served: bytes | None = None
    ) -> bytes:
        """Upload an LFS object; returns the pointer text to commit in its place.

        ``served`` makes the LFS server answer different bytes than the pointer promises,
        to test that the bot verifies sha256 and size.
        """
        oid = hashlib.sha256(content).hexdigest()
        with self.lock:
            self.repo(full_name).lfs[oid] = LfsObject(
                oid, len(content), content if served is None else served
            )
        return lfs_pointer(oid, len(content))

    # -- pulls ----------------------------------------------------------------------------------

    def open_pull(
        self,
        full_name: str,
        head_branch: str,
        base_branch: str,
        title: str,
        author_login: str,
        *,
        draft: bool = False,
        body: str = "",
    ) -> int:
        """Open a pull request (sends ``pull_request.opened``); returns its number."""
        with self.events():
            with self.lock:
                repo = self.repo(full_name)
                pull = self._add_pull(
                    repo, head_branch, base_branch, title, author_login, draft, body
                )
            return pull.number

    def create_pull(
        self,
        full_name: str,
        *,
        head: str,
        base: str,
        title: str,
        body: str = "",
        draft: bool = False,
        author_login: str | None = None,
    ) -> Pull:
        """POST pulls: refused with GitHub's 422s; ``pull_request.opened`` is queued, not sent."""
        with self.lock:
            repo = self.repo(full_name)
            owner, _, branch = head.rpartition(":")
            if (owner and owner.lower() != repo.owner.lower()) or branch not in repo.branches:
                raise _invalid("head")
            if base not in repo.branches:
                raise _invalid("base")
            if len(title) > MAX_PULL_TITLE:
                raise _custom(f"title is too long (maximum is {MAX_PULL_TITLE} characters)")
            if len(body) > MAX_PULL_BODY:
                raise _custom(f"body is too long (maximum is {MAX_PULL_BODY} characters)")
            for pull in repo.pulls.values():
                if pull.state == "open" and (pull.head_ref, pull.base_ref) == (branch, base):
                    raise _custom(f"A pull request already exists for {repo.owner}:{branch}.")
            if repo.branches[branch] in repo.objects.ancestors(repo.branches[base]):
                raise _custom(f"No commits between {base} and {branch}")
            login = author_login or self.app.bot_login
            return self._add_pull(repo, branch, base, title, login, draft, body)

    def _add_pull(
        self,
        repo: Repo,
        head_branch: str,
        base_branch: str,
        title: str,
        author_login: str,
        draft: bool,
        body: str,
    ) -> Pull:
        now = self.now()
        pull = Pull(
            number=self._next_issue_number(repo),
            title=title,
            body=body,
            author_login=author_login,
            head_ref=head_branch,
            base_ref=base_branch,
            head_sha=repo.branches[head_branch],
            created_at=now,
            updated_at=now,
            id=self.new_id(),
            draft=draft,
        )
        repo.pulls[pull.number] = pull
        self.user(author_login)
        self.queue_event("pull_request", "opened", repo=repo, pull=pull, sender=author_login)
        return pull

    def _next_issue_number(self, repo: Repo) -> int:
        used = [*repo.pulls, *repo.issues, *(c.issue_number for c in repo.comments.values())]
        return max(used, default=0) + 1

    def pull(self, full_name: str, number: int) -> Pull:
        """A pull request (KeyError when unknown)."""
        return self.repo(full_name).pulls[number]

    def set_pull_state(
        self,
        full_name: str,
        number: int,
        *,
        state: str | None = None,
        draft: bool | None = None,
        mergeable: bool | None = None,
        actor: str | None = None,
    ) -> None:
        """Close/reopen, mark ready for review, or flag (un)mergeable; sends the matching event."""
        with self.events(), self.lock:
            repo = self.repo(full_name)
            pull = repo.pulls[number]
            sender = actor or pull.author_login
            if mergeable is not None:
                pull.mergeable = mergeable
            if draft is not None and draft != pull.draft:
                pull.draft = draft
                action = "converted_to_draft" if draft else "ready_for_review"
                self.queue_event("pull_request", action, repo=repo, pull=pull, sender=sender)
            if state is not None and state != pull.state:
                pull.state = state
                pull.closed_at = self.now() if state == "closed" else None
                action = "closed" if state == "closed" else "reopened"
                self.queue_event("pull_request", action, repo=repo, pull=pull, sender=sender)
            pull.updated_at = self.now()

    def pull_files(self, full_name: str, number: int) -> list[dict[str, Any]]:
        """The files a pull changes, compared with the merge base (GitHub's three-dot diff)."""
        with self.lock:
            repo = self.repo(full_name)
            pull = repo.pulls[number]
            # A merged pull keeps showing the diff against the base it was merged into.
            base = pull.merged_base_sha or repo.branches[pull.base_ref]
            return changed_files(repo.objects, base=base, head=pull.head_sha)

    def merge_pull(
        self,
        full_name: str,
        number: int,
        *,
        sha: str | None = None,
        merge_method: str = "merge",
        commit_title: str | None = None,
        commit_message: str | None = None,
        merged_by: str | None = None,
    ) -> str:
        """Merge a pull like GitHub (405 not mergeable, 409 head moved); returns the commit sha."""
        with self.lock:
            repo = self.repo(full_name)
            pull = repo.pulls[number]
            if pull.state != "open" or pull.draft or not pull.mergeable:
                raise SandboxError(405, "Pull Request is not mergeable")
            if sha is not None and sha != pull.head_sha:
                raise SandboxError(409, "Head branch was modified. Review and try the merge again.")
            store = repo.objects
            base_tip = repo.branches[pull.base_ref]
            files = merged_files(store, base=base_tip, head=pull.head_sha)
            title = commit_title or (
                f"Merge pull request #{number} from {repo.owner}/{pull.head_ref}"
                if merge_method == "merge"
                else f"{pull.title} (#{number})"
            )
            message = title if not commit_message else f"{title}\n\n{commit_message}"
            actor = merged_by or self.app.bot_login
            parents = (base_tip, pull.head_sha) if merge_method == "merge" else (base_tip,)
            sig = self._signature(actor)
            merge_sha = store.put_commit(
                tree=store.write_files(files),
                parents=parents,
                author=sig,
                committer=sig,
                message=message,
            )
            repo.branches[pull.base_ref] = merge_sha
            now = self.now()
            pull.state, pull.merged, pull.merge_commit_sha = "closed", True, merge_sha
            pull.merged_at = pull.closed_at = pull.updated_at = now
            pull.merged_by, pull.merged_base_sha = actor, base_tip
            self.queue_event("pull_request", "closed", repo=repo, pull=pull, sender=actor)
            return merge_sha

    # -- issue comments -------------------------------------------------------------------------

    def add_comment(self, full_name: str, issue_number: int, body: str, author_login: str) -> int:
        """Comment on a pull request as ``author_login`` (sends ``issue_comment.created``)."""
        with self.events():
            return self.create_comment(full_name, issue_number, body, author_login)

    def add_review_comment(
        self, full_name: str, pull_number: int, body: str, author_login: str
    ) -> int:
        """Comment on a line of a pull's diff (sends ``pull_request_review_comment.created``).

        Review comments are not part of the conversation, so `comments_on` does not list them.
        """
        with self.events(), self.lock:
            repo = self.repo(full_name)
            if pull_number not in repo.pulls:
                raise SandboxError(404, "Not Found")
            now = self.now()
            comment = IssueComment(self.new_id(), pull_number, body, author_login, now, now)
            self.user(author_login)
            self.queue_event(
                "pull_request_review_comment",
                "created",
                repo=repo,
                pull=repo.pulls[pull_number],
                comment=comment,
                sender=author_login,
            )
            return comment.id

    def submit_review(
        self,
        full_name: str,
        number: int,
        body: str,
        author_login: str,
        *,
        commit_id: str | None = None,
        state: Literal["commented", "approved"] = "commented",
    ) -> int:
        """Submit a review (sends ``pull_request_review.submitted``); returns its id.

        ``commit_id`` is the head the reviewer looked at; it defaults to the pull's head now.
        A reviewer may submit on an older commit (a page left open while the author pushed).
        """
        with self.events(), self.lock:
            repo = self.repo(full_name)
            pull = repo.pulls.get(number)
            if pull is None:
                raise SandboxError(404, "Not Found")
            commit = commit_id or pull.head_sha
            if repo.resolve(commit) != commit:
                raise SandboxError(422, "Unprocessable Entity")  # no such commit
            review = Review(self.new_id(), number, body, author_login, commit, state, self.now())
            repo.reviews[review.id] = review
            self.user(author_login)
            self.queue_event(
                "pull_request_review",
                "submitted",
                repo=repo,
                pull=pull,
                review=review,
                sender=author_login,
            )
            return review.id

    def create_comment(
        self, full_name: str, issue_number: int, body: str, author_login: str
    ) -> int:
        """Store a comment and queue its webhook; returns the comment id."""
        with self.lock:
            repo = self.repo(full_name)
            if issue_number not in repo.pulls:
                _plain_issue(repo, issue_number)  # 404 / 410 when there is none to comment on
            now = self.now()
            comment = IssueComment(self.new_id(), issue_number, body, author_login, now, now)
            repo.comments[comment.id] = comment
            self.user(author_login)
            self._queue_comment_event(repo, comment, "created")
            return comment.id

    def edit_comment(
        self, full_name: str, comment_id: int, body: str, *, actor: str | None = None
    ) -> None:
        """Edit a comment's body (sends ``issue_comment.edited`` with the old body)."""
        with self.events():
            self.update_comment(full_name, comment_id, body, actor=actor)

    def update_comment(
        self, full_name: str, comment_id: int, body: str, *, actor: str | None = None
    ) -> IssueComment:
        """Change a comment's body and queue its webhook."""
        with self.lock:
            repo = self.repo(full_name)
            comment = repo.comments.get(comment_id)
            if comment is None:
                raise SandboxError(404, "Not Found")
            old = comment.body
            comment.body, comment.updated_at = body, self.now()
            if old != body:
                self._queue_comment_event(
                    repo, comment, "edited", sender=actor, changes={"body": {"from": old}}
                )
            return comment

    def delete_comment(self, full_name: str, comment_id: int, *, actor: str | None = None) -> None:
        """Delete a comment (sends ``issue_comment.deleted``)."""
        with self.events(), self.lock:
            repo = self.repo(full_name)
            comment = repo.comments.pop(comment_id)
            self._queue_comment_event(repo, comment, "deleted", sender=actor)

    def _queue_comment_event(
        self,
        repo: Repo,
        comment: IssueComment,
        action: str,
        *,
        sender: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        if comment.user_login == self.app.bot_login and not self.deliver_bot_comment_events:
            return
        if comment.issue_number not in repo.pulls:
            return  # the sandbox sends no webhooks for plain issues
        self.queue_event(
            "issue_comment",
            action,
            repo=repo,
            pull=repo.pulls[comment.issue_number],
            comment=comment,
            sender=sender or comment.user_login,
            changes=changes,
        )

    def react(
        self, full_name: str, comment_id: int, content: str, login: str
    ) -> tuple[Reaction, bool]:
        """Add a reaction; returns it and whether it is new (GitHub answers 200 for a repeat)."""
        with self.lock:
            comment = self.repo(full_name).comments.get(comment_id)
            if comment is None:
                raise SandboxError(404, "Not Found")
            for existing in comment.reactions:
                if existing.user_login == login and existing.content == content:
                    return existing, False
            reaction = Reaction(self.new_id(), login, content, self.now())
            comment.reactions.append(reaction)
            return reaction, True

    def comments_on(self, full_name: str, issue_number: int) -> list[IssueComment]:
        """Comments of a pull's conversation, oldest first."""
        with self.lock:
            repo = self.repo(full_name)
            return sorted(
                (c for c in repo.comments.values() if c.issue_number == issue_number),
                key=lambda c: c.id,
            )

    # -- issues ---------------------------------------------------------------------------------

    def create_issue(
        self,
        full_name: str,
        *,
        title: str,
        body: str = "",
        labels: list[str] | tuple[str, ...] = (),
        author_login: str | None = None,
    ) -> Issue:
        """POST issues: refused with GitHub's 422 and 410; unknown labels are created."""
        with self.lock:
            repo = self.repo(full_name)
            _issues_enabled(repo)
            _check_issue_text(title, body)
            login = author_login or self.app.bot_login
            now = self.now()
            issue = Issue(
                number=self._next_issue_number(repo),
                id=self.new_id(),
                title=title,
                body=body,
                author_login=login,
                created_at=now,
                updated_at=now,
                labels=self._labels(repo, labels),
            )
            repo.issues[issue.number] = issue
            self.user(login)
            return issue

    def issue(self, full_name: str, number: int) -> Issue:
        """A plain issue (KeyError when unknown or a pull request)."""
        return self.repo(full_name).issues[number]

    def issue_or_pull(self, full_name: str, number: int) -> Issue | Pull:
        """What ``/issues/{number}`` names: a plain issue or a pull request (404, 410)."""
        with self.lock:
            repo = self.repo(full_name)
            pull = repo.pulls.get(number)
            return pull if pull is not None else _plain_issue(repo, number)

    def update_issue(
        self,
        full_name: str,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: str | None = None,
        state_reason: str | None = None,
        labels: list[str] | None = None,
        actor: str | None = None,
    ) -> Issue | Pull:
        """PATCH an issue (a pull request's title, body and state too), as GitHub does."""
        with self.lock:
            repo = self.repo(full_name)
            found = self.issue_or_pull(full_name, number)
            _check_issue_text(found.title if title is None else title, body or "")
            wanted = state or found.state
            if isinstance(found, Pull):
                if labels is not None or state_reason is not None:
                    raise SandboxError(422, "the sandbox keeps no labels or state_reason on pulls")
                if state is not None and state != found.state and found.merged:
                    raise _invalid("state")  # a merged pull request stays closed
            elif (state_reason == "reopened") == (wanted == "closed") and state_reason is not None:
                # reopened is the reason of an open issue; the others, of a closed one
                raise SandboxError(422, "Validation Failed", errors=[_issue_error("state_reason")])
            now = self.now()
            if title is not None:
                found.title = title
            if body is not None:
                found.body = body
            if isinstance(found, Issue):
                if labels is not None:
                    found.labels = self._labels(repo, labels)
                self._move_issue(found, wanted, state_reason, actor or self.app.bot_login, now)
            elif wanted != found.state:
                found.state = wanted
                found.closed_at = now if wanted == "closed" else None
            found.updated_at = now
            return found

    def _move_issue(
        self, issue: Issue, wanted: str, reason: str | None, actor: str, now: datetime
    ) -> None:
        # Closing without a reason means completed; reopening sets reopened (GitHub's rules).
        if wanted == "closed":
            if issue.state != "closed":
                issue.closed_at, issue.closed_by = now, actor
                self.user(actor)
            issue.state_reason = reason or (
                issue.state_reason if issue.state == "closed" else "completed"
            )
        elif issue.state == "closed":
            issue.state_reason, issue.closed_at = "reopened", None
        issue.state = wanted

    def issues_listed(
        self,
        full_name: str,
        *,
        state: str = "open",
        labels: list[str] | None = None,
        creator: str | None = None,
        sort: str = "created",
        direction: str = "desc",
        since: datetime | None = None,
    ) -> list[Issue | Pull]:
        """``GET issues``: plain issues and pull requests matching every filter, in order."""
        if state not in ("open", "closed", "all") or sort not in ISSUE_SORTS:
            raise SandboxError(422, "Validation Failed", errors=[_issue_error("state/sort")])
        if direction not in ("asc", "desc"):
            raise SandboxError(422, "Validation Failed", errors=[_issue_error("direction")])
        with self.lock:
            repo = self.repo(full_name)
            _issues_enabled(repo)
            wanted = {name.lower() for name in labels or []}
            counts: dict[int, int] = {}
            for comment in repo.comments.values():
                counts[comment.issue_number] = counts.get(comment.issue_number, 0) + 1
            everything: list[Issue | Pull] = [*repo.issues.values(), *repo.pulls.values()]
            found = [
                item
                for item in everything
                if state in ("all", item.state)
                and wanted <= {n.lower() for n in (item.labels if isinstance(item, Issue) else [])}
                and (creator is None or item.author_login.lower() == creator.lower())
                and (since is None or item.updated_at >= since)
            ]

            def order(item: Issue | Pull) -> tuple[Any, int]:
                if sort == "updated":
                    return item.updated_at, item.number
                if sort == "comments":
                    return counts.get(item.number, 0), item.number
                return item.created_at, item.number

            return sorted(found, key=order, reverse=direction == "desc")

    def _labels(self, repo: Repo, names: list[str] | tuple[str, ...]) -> list[str]:
        """The issue's label names, creating unknown labels on the repository."""
        kept: list[str] = []
        for name in names:
            if not name.strip():
                raise SandboxError(422, "Validation Failed", errors=[_issue_error("labels")])
            label = repo.labels.get(name.lower())
            if label is None:
                label = repo.labels[name.lower()] = Label(self.new_id(), name)
            if label.name not in kept:
                kept.append(label.name)
        return kept

    # -- check runs -----------------------------------------------------------------------------

    def save_check_run(self, full_name: str, run: CheckRun) -> CheckRun:
        """Store (create or replace) a check run."""
        with self.lock:
            self.repo(full_name).check_runs[run.id] = run
            return run

    def check_runs_for(self, full_name: str, sha: str) -> list[CheckRun]:
        """Every check run on a commit, newest first."""
        with self.lock:
            runs = self.repo(full_name).check_runs.values()
            return sorted((r for r in runs if r.head_sha == sha), key=lambda r: -r.id)

    def check_run_named(self, full_name: str, sha: str, name: str) -> CheckRun | None:
        """The latest check run called ``name`` on a commit (what branch protection reads)."""
        return next((r for r in self.check_runs_for(full_name, sha) if r.name == name), None)
