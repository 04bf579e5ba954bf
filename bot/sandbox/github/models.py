"""Records the GitHub sandbox keeps in memory: app, installations, repos, pulls, checks..."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.sandbox.github.git_objects import ObjectStore


class Permission(enum.StrEnum):
    """Repository roles a collaborator can hold, as GitHub names them."""

    ADMIN = "admin"
    MAINTAIN = "maintain"
    WRITE = "write"
    TRIAGE = "triage"
    READ = "read"
    NONE = "none"

    @property
    def legacy(self) -> str:
        """The coarse ``permission`` value GitHub reports for this role."""
        return {"maintain": "write", "triage": "read"}.get(self.value, self.value)


@dataclass
class User:
    """A GitHub account."""

    login: str
    id: int
    type: str = "User"


@dataclass(frozen=True)
class AppInfo:
    """The GitHub App the bot runs as."""

    app_id: int
    slug: str
    name: str
    owner_login: str
    public_key_pem: str

    @property
    def bot_login(self) -> str:
        """Login of the App's bot user, e.g. ``shipyard[bot]``."""
        return f"{self.slug}[bot]"


@dataclass
class Installation:
    """An installation of the App on an account."""

    id: int
    account_login: str


@dataclass
class AccessToken:
    """An installation access token (``ghs_...``)."""

    value: str
    installation_id: int
    expires_at: datetime


@dataclass
class Pull:
    """A pull request."""

    number: int
    title: str
    body: str
    author_login: str
    head_ref: str
    base_ref: str
    head_sha: str
    created_at: datetime
    updated_at: datetime
    id: int = 0
    state: str = "open"
    draft: bool = False
    merged: bool = False
    mergeable: bool | None = True
    merge_commit_sha: str | None = None
    merged_by: str | None = None
    merged_base_sha: str | None = None
    closed_at: datetime | None = None
    merged_at: datetime | None = None


@dataclass
class Label:
    """A repository label (GitHub creates one when an issue names an unknown label)."""

    id: int
    name: str
    color: str = "ededed"


@dataclass
class Issue:
    """An issue that is not a pull request (pull requests share its numbers)."""

    number: int
    id: int
    title: str
    body: str
    author_login: str
    created_at: datetime
    updated_at: datetime
    labels: list[str] = field(default_factory=list)  # label names, in the order given
    state: str = "open"
    state_reason: str | None = None  # completed | not_planned | duplicate | reopened
    closed_at: datetime | None = None
    closed_by: str | None = None


@dataclass
class Reaction:
    """A reaction on an issue comment."""

    id: int
    user_login: str
    content: str
    created_at: datetime


@dataclass
class IssueComment:
    """A comment on an issue or pull request conversation."""

    id: int
    issue_number: int
    body: str
    user_login: str
    created_at: datetime
    updated_at: datetime
    reactions: list[Reaction] = field(default_factory=list)


@dataclass
class Review:
    """A pull request review: its body, verdict and the commit it was written on."""

    id: int
    pull_number: int
    body: str
    user_login: str
    commit_id: str
    state: str  # "commented" | "approved" | "changes_requested", as the webhook spells it
    submitted_at: datetime


@dataclass
class CheckRun:
    """A check run on a commit."""

    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    output: dict[str, Any]
    details_url: str | None
    external_id: str | None
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DeploymentStatus:
    """One status of a deployment; the newest is the deployment's state."""

    id: int
    state: str
    description: str
    environment: str
    environment_url: str
    log_url: str
    created_at: datetime


@dataclass
class Deployment:
    """A deployment of a ref to an environment, with its statuses oldest first."""

    id: int
    sha: str
    ref: str
    task: str
    environment: str
    description: str | None
    payload: dict[str, Any] | str
    transient_environment: bool
    production_environment: bool
    created_at: datetime
    statuses: list[DeploymentStatus] = field(default_factory=list)


@dataclass
class LfsObject:
    """A Git LFS object; ``served`` differs from the pointed-to bytes only to test verification."""

    oid: str
    size: int
    served: bytes


@dataclass
class Repo:
    """A repository with its git objects, refs, pulls, comments and checks."""

    id: int
    owner: str
    name: str
    installation_id: int
    default_branch: str
    objects: ObjectStore = field(default_factory=ObjectStore)
    branches: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, Pull] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)  # by lower-cased name
    has_issues: bool = True  # False: the issue routes answer 410, as GitHub does
    comments: dict[int, IssueComment] = field(default_factory=dict)
    reviews: dict[int, Review] = field(default_factory=dict)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    deployments: dict[int, Deployment] = field(default_factory=dict)
    permissions: dict[str, Permission] = field(default_factory=dict)
    lfs: dict[str, LfsObject] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    def resolve(self, ref: str) -> str | None:
        """Commit id for a branch name, ``heads/<branch>``, ``refs/heads/<branch>`` or a sha."""
        for prefix in ("refs/heads/", "heads/"):
            if ref.startswith(prefix) and ref[len(prefix) :] in self.branches:
                return self.branches[ref[len(prefix) :]]
        if ref in self.branches:
            return self.branches[ref]
        if len(ref) >= 7:
            matches = [sha for sha in self.objects.commits if sha.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        return None


@dataclass
class InjectedFailure:
    """A canned error the sandbox answers instead of the real route, ``remaining`` more times."""

    method: str
    path_regex: str
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    remaining: int


@dataclass(frozen=True)
class Violation:
    """A request the real GitHub would reject, or a response that breaks GitHub's schema."""

    method: str
    path: str
    kind: str
    errors: tuple[str, ...]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox answered."""

    method: str
    path: str
    template: str | None
    status: int
    body: Any
    query: str = ""
