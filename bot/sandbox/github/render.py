"""Build GitHub REST response bodies from the OpenAPI examples, patched with sandbox state."""

from __future__ import annotations

import base64
import copy
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from bot.sandbox.github.git_objects import Commit
from bot.sandbox.github.models import (
    CheckRun,
    Deployment,
    DeploymentStatus,
    Issue,
    IssueComment,
    Permission,
    Pull,
    Reaction,
    Repo,
    User,
)
from bot.sandbox.github.openapi import OpenApiSubset, load_subset
from bot.sandbox.github.view import StateView

# GitHub serves file contents through the contents API only up to this size (then encoding none).
CONTENTS_API_MAX_BYTES = 1024 * 1024


def iso(when: datetime | None) -> str | None:
    """GitHub's timestamp format, ``2024-01-01T00:00:00Z``."""
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


@cache
def _example_part(method: str, path: str, status: int, keys: tuple[str | int, ...]) -> Any:
    subset: OpenApiSubset = load_subset()
    value = subset.operation(method, path).response_example(status)
    for key in keys:
        value = value[key]
    return value


def example(method: str, path: str, status: int, *keys: str | int) -> Any:
    """A fresh copy of (a part of) the first response example of an operation."""
    return copy.deepcopy(_example_part(method, path, status, keys))


def _rebase(value: Any, base: str) -> Any:
    # Examples point at api.github.com/github.com; nothing the sandbox serves may lead there.
    if isinstance(value, dict):
        return {k: _rebase(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, base) for v in value]
    if isinstance(value, str):
        for prefix in ("https://api.github.com", "https://github.com"):
            if value.startswith(prefix):
                return base + value[len(prefix) :]
    return value


def base64_lines(data: bytes) -> str:
    """Base64 wrapped at 60 characters per line, as the contents API returns it."""
    encoded = base64.b64encode(data).decode()
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


class Renderer:
    """Response bodies for one sandbox, all URLs rooted at its base URL."""

    def __init__(self, state: StateView) -> None:
        self.state = state

    @property
    def base(self) -> str:
        """Root URL of the sandbox."""
        return self.state.base_url

    def template(self, method: str, path: str, status: int, *keys: str | int) -> dict[str, Any]:
        """A fresh copy of (part of) an operation's response example, URLs pointing here."""
        body = _rebase(_example_part(method, path, status, keys), self.base)
        assert isinstance(body, dict)
        return body

    def rebase(self, value: Any) -> Any:
        """Point every URL of an example at the sandbox."""
        return _rebase(value, self.base)

    # -- accounts -------------------------------------------------------------------------------

    def user(self, user: User) -> dict[str, Any]:
        """A ``simple-user``."""
        body = self.template("get", "/repos/{owner}/{repo}/pulls/{pull_number}", 200, "user")
        api = f"{self.base}/users/{user.login}"
        body.update(
            login=user.login,
            id=user.id,
            node_id=f"U_{user.id}",
            type=user.type,
            site_admin=False,
            url=api,
            html_url=f"{self.base}/{user.login}",
        )
        for key in ("followers", "subscriptions", "organizations", "repos", "received_events"):
            body[f"{key}_url"] = f"{api}/{key}"
        return body

    def login(self, login: str) -> dict[str, Any]:
        """A ``simple-user`` for a login."""
        return self.user(self.state.user(login))

    def app(self) -> dict[str, Any]:
        """The ``integration`` object of the App."""
        app = self.state.app
        body = self.template("get", "/app", 200)
        body.update(
            id=app.app_id,
            slug=app.slug,
            name=app.name,
            node_id=f"A_{app.app_id}",
            owner=self.login(app.owner_login),
            html_url=f"{self.base}/apps/{app.slug}",
        )
        return body

    def installation(self, installation_id: int) -> dict[str, Any]:
        """An ``installation`` object."""
        inst = self.state.installations[installation_id]
        account = self.login(inst.account_login)
        body = self.template("get", "/repos/{owner}/{repo}/installation", 200)
        body.update(
            id=inst.id,
            account=account,
            app_id=self.state.app.app_id,
            app_slug=self.state.app.slug,
            target_id=account["id"],
            target_type="Organization",
            access_tokens_url=f"{self.base}/app/installations/{inst.id}/access_tokens",
            html_url=f"{self.base}/organizations/{inst.account_login}/settings/installations/{inst.id}",
        )
        return body

    # -- repositories ---------------------------------------------------------------------------

    def repository(self, repo: Repo) -> dict[str, Any]:
        """A full ``repository`` object."""
        body = self.template(
            "get", "/repos/{owner}/{repo}/pulls/{pull_number}", 200, "base", "repo"
        )
        api = f"{self.base}/repos/{repo.full_name}"
        for key, value in list(body.items()):
            if isinstance(value, str) and "/repos/octocat/Hello-World" in value:
                body[key] = value.replace(f"{self.base}/repos/octocat/Hello-World", api)
        body.update(
            id=repo.id,
            node_id=f"R_{repo.id}",
            name=repo.name,
            full_name=repo.full_name,
            owner=self.login(repo.owner),
            private=True,
            visibility="private",
            url=api,
            html_url=f"{self.base}/{repo.full_name}",
            clone_url=f"{self.base}/{repo.full_name}.git",
            default_branch=repo.default_branch,
            fork=False,
        )
        return body

    def full_repository(self, repo: Repo) -> dict[str, Any]:
        """A ``full-repository`` (GET one repository): where its default branch is named."""
        body = self.template("get", "/repos/{owner}/{repo}", 200)
        api = f"{self.base}/repos/{repo.full_name}"
        for key, value in list(body.items()):
            if isinstance(value, str) and "/repos/octocat/Hello-World" in value:
                body[key] = value.replace(f"{self.base}/repos/octocat/Hello-World", api)
        base = self.repository(repo)
        body.update({k: v for k, v in base.items() if k in body})
        body.setdefault("language", None)  # required by the schema, absent from the example
        body.pop("parent", None)
        body.pop("source", None)
        body.pop("template_repository", None)
        return body

    # -- pulls ----------------------------------------------------------------------------------

    def _pull_fields(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}"
        html = f"{self.base}/{repo.full_name}/pull/{pull.number}"
        repository = self.repository(repo)
        owner = self.login(repo.owner)

        def side(ref: str, sha: str) -> dict[str, Any]:
            return {
                "label": f"{repo.owner}:{ref}",
                "ref": ref,
                "sha": sha,
                "user": owner,
                "repo": repository,
            }

        return {
            "url": f"{api}/pulls/{pull.number}",
            "id": pull.id,
            "node_id": f"PR_{pull.id}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{pull.number}",
            "commits_url": f"{api}/pulls/{pull.number}/commits",
            "review_comments_url": f"{api}/pulls/{pull.number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self.login(pull.author_login),
            "body": pull.body,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(pull.created_at),
            "updated_at": iso(pull.updated_at),
            "closed_at": iso(pull.closed_at),
            "merged_at": iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": side(pull.head_ref, pull.head_sha),
            "base": side(pull.base_ref, pull.merged_base_sha or repo.branches[pull.base_ref]),
            "author_association": "MEMBER",
            "auto_merge": None,
            "draft": pull.draft,
        }

    def pull(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        """A full ``pull-request`` (GET one pull)."""
        body = self.template("get", "/repos/{owner}/{repo}/pulls/{pull_number}", 200)
        body.update(self._pull_fields(repo, pull))
        body["_links"] = self._pull_links(repo, pull)
        mergeable = pull.mergeable if pull.state == "open" else None
        body.update(
            merged=pull.merged,
            mergeable=mergeable,
            rebaseable=mergeable,
            mergeable_state=_mergeable_state(pull),
            merged_by=None if pull.merged_by is None else self.login(pull.merged_by),
            comments=sum(1 for c in repo.comments.values() if c.issue_number == pull.number),
            review_comments=0,
            maintainer_can_modify=False,
            commits=1,
            additions=0,
            deletions=0,
            changed_files=len(self.state.pull_files(repo.full_name, pull.number)),
        )
        return body

    def pull_simple(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        """A ``pull-request-simple`` (list of pulls)."""
        body = self.template("get", "/repos/{owner}/{repo}/pulls", 200, 0)
        body.update(self._pull_fields(repo, pull))
        body["_links"] = self._pull_links(repo, pull)
        return body

    def _pull_links(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}"
        return {
            "self": {"href": f"{api}/pulls/{pull.number}"},
            "html": {"href": f"{self.base}/{repo.full_name}/pull/{pull.number}"},
            "issue": {"href": f"{api}/issues/{pull.number}"},
            "comments": {"href": f"{api}/issues/{pull.number}/comments"},
            "review_comments": {"href": f"{api}/pulls/{pull.number}/comments"},
            "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/pulls/{pull.number}/commits"},
            "statuses": {"href": f"{api}/statuses/{pull.head_sha}"},
        }

    def pull_file(self, repo: Repo, head_sha: str, change: dict[str, Any]) -> dict[str, Any]:
        """A ``diff-entry`` of a pull's files."""
        body = self.template("get", "/repos/{owner}/{repo}/pulls/{pull_number}/files", 200, 0)
        name = change["filename"]
        body.update(
            sha=change["sha"],
            filename=name,
            status=change["status"],
            additions=change["additions"],
            deletions=change["deletions"],
            changes=change["additions"] + change["deletions"],
            blob_url=f"{self.base}/{repo.full_name}/blob/{head_sha}/{name}",
            raw_url=f"{self.base}/{repo.full_name}/raw/{head_sha}/{name}",
            contents_url=f"{self.base}/repos/{repo.full_name}/contents/{name}?ref={head_sha}",
        )
        body.pop("patch", None)
        return body

    # -- git data -------------------------------------------------------------------------------

    def commit(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        """A ``commit`` (GET a commit)."""
        body = self.template("get", "/repos/{owner}/{repo}/commits/{ref}", 200)
        api = f"{self.base}/repos/{repo.full_name}"
        body.update(
            sha=commit.sha,
            node_id=f"C_{commit.sha}",
            url=f"{api}/commits/{commit.sha}",
            html_url=f"{self.base}/{repo.full_name}/commit/{commit.sha}",
            comments_url=f"{api}/commits/{commit.sha}/comments",
            author=None,
            committer=None,
            parents=[
                {
                    "sha": p,
                    "url": f"{api}/commits/{p}",
                    "html_url": f"{self.base}/{repo.full_name}/commit/{p}",
                }
                for p in commit.parents
            ],
            files=[],
            stats={"additions": 0, "deletions": 0, "total": 0},
        )
        body["commit"].update(
            url=f"{api}/git/commits/{commit.sha}",
            message=commit.message,
            comment_count=0,
            tree={"sha": commit.tree, "url": f"{api}/git/trees/{commit.tree}"},
            author=_signature(commit.author.name, commit.author.email, commit.author.when),
            committer=_signature(
                commit.committer.name, commit.committer.email, commit.committer.when
            ),
        )
        body["commit"].pop("verification", None)
        return body

    def git_commit(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        """A ``git-commit`` (the commit object, as create-commit answers)."""
        body = self.template("post", "/repos/{owner}/{repo}/git/commits", 201)
        api = f"{self.base}/repos/{repo.full_name}"
        body.update(
            sha=commit.sha,
            node_id=f"C_{commit.sha}",
            url=f"{api}/git/commits/{commit.sha}",
            html_url=f"{self.base}/{repo.full_name}/commit/{commit.sha}",
            author=_signature(commit.author.name, commit.author.email, commit.author.when),
            committer=_signature(
                commit.committer.name, commit.committer.email, commit.committer.when
            ),
            message=commit.message,
            tree={"sha": commit.tree, "url": f"{api}/git/trees/{commit.tree}"},
            parents=[
                {
                    "sha": p,
                    "url": f"{api}/git/commits/{p}",
                    "html_url": f"{self.base}/{repo.full_name}/commit/{p}",
                }
                for p in commit.parents
            ],
            verification={
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        )
        return body

    def branch(self, repo: Repo, name: str) -> dict[str, Any]:
        """A ``branch-with-protection``."""
        sha = repo.branches[name]
        body = self.template("get", "/repos/{owner}/{repo}/branches/{branch}", 200)
        api = f"{self.base}/repos/{repo.full_name}"
        body.update(
            name=name,
            commit=self.commit(repo, repo.objects.commits[sha]),
            _links={
                "html": f"{self.base}/{repo.full_name}/tree/{name}",
                "self": f"{api}/branches/{name}",
            },
            protected=False,
            protection_url=f"{api}/branches/{name}/protection",
        )
        return body

    def ref(self, repo: Repo, branch: str) -> dict[str, Any]:
        """A ``git-ref`` for a branch."""
        sha = repo.branches[branch]
        api = f"{self.base}/repos/{repo.full_name}"
        body = self.template("get", "/repos/{owner}/{repo}/git/ref/{ref}", 200)
        body.update(
            ref=f"refs/heads/{branch}",
            node_id=f"REF_{repo.id}_{branch}",
            url=f"{api}/git/refs/heads/{branch}",
            object={"sha": sha, "type": "commit", "url": f"{api}/git/commits/{sha}"},
        )
        return body

    def blob(self, repo: Repo, sha: str) -> dict[str, Any]:
        """A ``blob``, base64-encoded."""
        data = repo.objects.blobs[sha]
        body = self.template("get", "/repos/{owner}/{repo}/git/blobs/{file_sha}", 200)
        body.update(
            sha=sha,
            node_id=f"B_{sha}",
            size=len(data),
            encoding="base64",
            content=base64_lines(data),
            url=f"{self.base}/repos/{repo.full_name}/git/blobs/{sha}",
        )
        return body

    def tree(self, repo: Repo, tree_sha: str, *, recursive: bool) -> dict[str, Any]:
        """A ``git-tree``, optionally with every nested entry."""
        api = f"{self.base}/repos/{repo.full_name}"
        store = repo.objects
        walked = (
            store.walk(tree_sha)
            if recursive
            else [(entry.name, entry) for entry in store.trees[tree_sha]]
        )
        entries: list[dict[str, Any]] = []
        for path, entry in walked:
            item: dict[str, Any] = {
                "path": path,
                "mode": "040000" if entry.is_tree else entry.mode,
                "type": "tree" if entry.is_tree else "blob",
                "sha": entry.sha,
                "url": f"{api}/git/{'trees' if entry.is_tree else 'blobs'}/{entry.sha}",
            }
            if not entry.is_tree:
                item["size"] = len(store.blobs[entry.sha])
            entries.append(item)
        return {
            "sha": tree_sha,
            "url": f"{api}/git/trees/{tree_sha}",
            "tree": entries,
            "truncated": False,
        }

    def content_item(
        self, repo: Repo, path: str, *, sha: str, is_dir: bool, ref: str
    ) -> dict[str, Any]:
        """One entry of a directory listing of the contents API."""
        api = f"{self.base}/repos/{repo.full_name}"
        kind = "tree" if is_dir else "blob"
        html = f"{self.base}/{repo.full_name}/{kind}/{ref}/{path}"
        git_url = f"{api}/git/{'trees' if is_dir else 'blobs'}/{sha}"
        self_url = f"{api}/contents/{path}?ref={ref}"
        return {
            "type": "dir" if is_dir else "file",
            "size": 0 if is_dir else len(repo.objects.blobs[sha]),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": self_url,
            "git_url": git_url,
            "html_url": html,
            "download_url": None if is_dir else f"{self.base}/{repo.full_name}/raw/{ref}/{path}",
            "_links": {"self": self_url, "git": git_url, "html": html},
        }

    def content_file(self, repo: Repo, path: str, *, sha: str, ref: str) -> dict[str, Any]:
        """A ``content-file``; files over 1 MB come without content, like on GitHub."""
        data = repo.objects.blobs[sha]
        body = self.content_item(repo, path, sha=sha, is_dir=False, ref=ref)
        too_big = len(data) > CONTENTS_API_MAX_BYTES
        body.update(
            encoding="none" if too_big else "base64",
            content="" if too_big else base64_lines(data),
        )
        return body

    # -- checks ---------------------------------------------------------------------------------

    def check_run(self, repo: Repo, run: CheckRun) -> dict[str, Any]:
        """A ``check-run``."""
        body = self.template("post", "/repos/{owner}/{repo}/check-runs", 201)
        api = f"{self.base}/repos/{repo.full_name}"
        output = {
            "title": run.output.get("title"),
            "summary": run.output.get("summary"),
            "text": run.output.get("text"),
            "annotations_count": len(run.output.get("annotations", [])),
            "annotations_url": f"{api}/check-runs/{run.id}/annotations",
        }
        body.update(
            id=run.id,
            node_id=f"CR_{run.id}",
            name=run.name,
            head_sha=run.head_sha,
            status=run.status,
            conclusion=run.conclusion,
            started_at=iso(run.started_at),
            completed_at=iso(run.completed_at),
            output=output,
            details_url=run.details_url,
            external_id=run.external_id,
            url=f"{api}/check-runs/{run.id}",
            html_url=f"{self.base}/{repo.full_name}/runs/{run.id}",
            app=self.app(),
            check_suite={"id": 1},
            pull_requests=[
                self._pull_minimal(repo, p)
                for p in repo.pulls.values()
                if p.head_sha == run.head_sha and p.state == "open"
            ],
        )
        return body

    # -- deployments ----------------------------------------------------------------------------

    def deployment(self, repo: Repo, deployment: Deployment) -> dict[str, Any]:
        """A ``deployment``, created by the App's bot user."""
        body = self.template("post", "/repos/{owner}/{repo}/deployments", 201)
        url = f"{self.base}/repos/{repo.full_name}/deployments/{deployment.id}"
        body.update(
            id=deployment.id,
            node_id=f"DE_{deployment.id}",
            sha=deployment.sha,
            ref=deployment.ref,
            task=deployment.task,
            environment=deployment.environment,
            original_environment=deployment.environment,
            description=deployment.description,
            payload=deployment.payload,
            transient_environment=deployment.transient_environment,
            production_environment=deployment.production_environment,
            creator=self.login(self.state.app.bot_login),
            created_at=iso(deployment.created_at),
            updated_at=iso(deployment.created_at),
            url=url,
            statuses_url=f"{url}/statuses",
            repository_url=f"{self.base}/repos/{repo.full_name}",
            performed_via_github_app=self.app(),
        )
        return body

    def deployment_status(
        self, repo: Repo, deployment: Deployment, status: DeploymentStatus
    ) -> dict[str, Any]:
        """A ``deployment-status``."""
        path = "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"
        body = self.template("post", path, 201)
        url = f"{self.base}/repos/{repo.full_name}/deployments/{deployment.id}"
        body.update(
            id=status.id,
            node_id=f"DES_{status.id}",
            state=status.state,
            description=status.description,
            environment=status.environment,
            environment_url=status.environment_url,
            log_url=status.log_url,
            target_url=status.log_url,
            creator=self.login(self.state.app.bot_login),
            created_at=iso(status.created_at),
            updated_at=iso(status.created_at),
            url=f"{url}/statuses/{status.id}",
            deployment_url=url,
            repository_url=f"{self.base}/repos/{repo.full_name}",
            performed_via_github_app=self.app(),
        )
        return body

    def _pull_minimal(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}"
        mini_repo = {"id": repo.id, "name": repo.name, "url": api}
        return {
            "id": pull.id,
            "number": pull.number,
            "url": f"{api}/pulls/{pull.number}",
            "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": mini_repo},
            "base": {"ref": pull.base_ref, "sha": repo.branches[pull.base_ref], "repo": mini_repo},
        }

    # -- issues ---------------------------------------------------------------------------------

    def comment(self, repo: Repo, comment: IssueComment) -> dict[str, Any]:
        """An ``issue-comment``."""
        body = self.template("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 201)
        api = f"{self.base}/repos/{repo.full_name}"
        user = self.state.user(comment.user_login)
        body.update(
            id=comment.id,
            node_id=f"IC_{comment.id}",
            body=comment.body,
            user=self.user(user),
            created_at=iso(comment.created_at),
            updated_at=iso(comment.updated_at),
            url=f"{api}/issues/comments/{comment.id}",
            html_url=f"{self._issue_html(repo, comment.issue_number)}#issuecomment-{comment.id}",
            issue_url=f"{api}/issues/{comment.issue_number}",
            author_association="NONE" if user.type == "Bot" else "MEMBER",
        )
        return body

    def _issue_html(self, repo: Repo, number: int) -> str:
        kind = "pull" if number in repo.pulls else "issues"
        return f"{self.base}/{repo.full_name}/{kind}/{number}"

    def issue(self, repo: Repo, item: Issue | Pull) -> dict[str, Any]:
        """An ``issue``; a pull request's carries the ``pull_request`` block, as on GitHub."""
        body = self.template("post", "/repos/{owner}/{repo}/issues", 201)
        api = f"{self.base}/repos/{repo.full_name}"
        url = f"{api}/issues/{item.number}"
        closed_by = item.closed_by if isinstance(item, Issue) else item.merged_by
        author = self.state.user(item.author_login)
        body.update(
            id=item.id,
            node_id=f"I_{item.id}",
            url=url,
            repository_url=api,
            labels_url=f"{url}/labels{{/name}}",
            comments_url=f"{url}/comments",
            events_url=f"{url}/events",
            html_url=self._issue_html(repo, item.number),
            number=item.number,
            state=item.state,
            state_reason=item.state_reason if isinstance(item, Issue) else None,
            title=item.title,
            body=item.body,
            user=self.user(author),
            labels=[self.label(repo, name) for name in self._label_names(item)],
            assignee=None,
            assignees=[],
            milestone=None,
            locked=False,
            active_lock_reason=None,
            comments=sum(1 for c in repo.comments.values() if c.issue_number == item.number),
            closed_at=iso(item.closed_at),
            closed_by=None if closed_by is None else self.login(closed_by),
            created_at=iso(item.created_at),
            updated_at=iso(item.updated_at),
            author_association="NONE" if author.type == "Bot" else "MEMBER",
        )
        if isinstance(item, Pull):
            html = f"{self.base}/{repo.full_name}/pull/{item.number}"
            body["pull_request"] = {
                "url": f"{api}/pulls/{item.number}",
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": iso(item.merged_at),
            }
            body["draft"] = item.draft
        else:
            body.pop("pull_request", None)
            body.pop("draft", None)
        return body

    @staticmethod
    def _label_names(item: Issue | Pull) -> list[str]:
        return item.labels if isinstance(item, Issue) else []

    def label(self, repo: Repo, name: str) -> dict[str, Any]:
        """A ``label`` of an issue."""
        label = repo.labels[name.lower()]
        return {
            "id": label.id,
            "node_id": f"LA_{label.id}",
            "url": f"{self.base}/repos/{repo.full_name}/labels/{quote(label.name)}",
            "name": label.name,
            "description": None,
            "color": label.color,
            "default": False,
        }

    def reaction(self, reaction: Reaction) -> dict[str, Any]:
        """A ``reaction``."""
        return {
            "id": reaction.id,
            "node_id": f"RE_{reaction.id}",
            "user": self.login(reaction.user_login),
            "content": reaction.content,
            "created_at": iso(reaction.created_at),
        }

    # -- access ---------------------------------------------------------------------------------

    def permission(self, login: str, role: Permission) -> dict[str, Any]:
        """A ``repository-collaborator-permission``."""
        user = self.login(login)
        flags = {
            "admin": role is Permission.ADMIN,
            "maintain": role in (Permission.ADMIN, Permission.MAINTAIN),
            "push": role in (Permission.ADMIN, Permission.MAINTAIN, Permission.WRITE),
            "triage": role not in (Permission.READ, Permission.NONE),
            "pull": role is not Permission.NONE,
        }
        user.update(permissions=flags, role_name=role.value)
        return {"permission": role.legacy, "role_name": role.value, "user": user}


def _signature(name: str, email: str, when: datetime) -> dict[str, Any]:
    return {"name": name, "email": email, "date": iso(when)}


def _mergeable_state(pull: Pull) -> str:
    if pull.state != "open":
        return "unknown"
    if pull.draft:
        return "draft"
    return "clean" if pull.mergeable else "dirty"
