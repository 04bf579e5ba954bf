"""The few GitHub objects the bot reads, typed (extra fields ignored)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _GH(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_GH):
    login: str
    id: int | None = None
    type: str = "User"


class Repository(_GH):
    full_name: str
    default_branch: str = "main"
    clone_url: str | None = None
    html_url: str | None = None

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]


class Installation(_GH):
    id: int


class BranchRef(_GH):
    ref: str
    sha: str


class PullRequest(_GH):
    number: int
    state: str
    draft: bool = False
    merged: bool | None = None
    merge_commit_sha: str | None = None
    mergeable: bool | None = None
    title: str = ""
    html_url: str | None = None
    user: User
    head: BranchRef
    base: BranchRef
    changed_files: int | None = None  # GitHub lists at most 3,000 of them
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PullFile(_GH):
    filename: str
    status: str
    previous_filename: str | None = None


class ContentFile(_GH):
    type: str
    path: str
    sha: str
    size: int
    encoding: str | None = None
    content: str | None = None


class TreeEntry(_GH):
    path: str
    type: str
    sha: str
    mode: str
    size: int | None = None


class Tree(_GH):
    sha: str
    tree: list[TreeEntry]
    truncated: bool = False


class Blob(_GH):
    sha: str
    size: int
    encoding: str
    content: str


class Commit(_GH):
    sha: str


class Branch(_GH):
    name: str
    commit: Commit


class CheckRunOutput(_GH):
    title: str | None = None
    summary: str | None = None


class CheckRun(_GH):
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None = None
    external_id: str | None = None
    details_url: str | None = None
    output: CheckRunOutput | None = None


class CheckRunList(_GH):
    total_count: int
    check_runs: list[CheckRun]


class Deployment(_GH):
    id: int
    sha: str
    ref: str
    task: str
    environment: str
    payload: dict[str, Any] | str = Field(default_factory=dict)


class DeploymentStatus(_GH):
    id: int
    state: str
    description: str | None = None
    environment_url: str | None = None
