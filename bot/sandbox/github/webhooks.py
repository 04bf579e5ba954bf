"""Webhooks as GitHub sends them: payloads from GitHub's examples, signed, delivered over HTTP."""

from __future__ import annotations

import copy
import gzip
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from bot.base.tls import shared_tls
from bot.sandbox.github.fixture_files import github_fixture
from bot.sandbox.github.models import IssueComment, Pull, Repo, Review
from bot.sandbox.github.render import Renderer, iso
from bot.sandbox.github.view import StateView

DEFAULT_EXAMPLES_PATH = github_fixture("webhooks-examples.json.gz")
HOOKSHOT_USER_AGENT = "GitHub-Hookshot/5c9a1f2"
DELIVERY_TIMEOUT_S = 30.0


def sign_webhook(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends: ``sha256=<hex hmac of the raw body>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def sign_webhook_sha1(secret: str, body: bytes) -> str:
    """The legacy ``X-Hub-Signature`` value: ``sha1=<hex hmac>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return f"sha1={digest}"


@cache
def _load_examples(path: Path) -> tuple[tuple[str, tuple[dict[str, Any], ...]], ...]:
    index = json.loads(gzip.decompress(path.read_bytes()))
    return tuple((entry["name"], tuple(entry["examples"])) for entry in index)


def iter_webhook_examples(
    path: Path = DEFAULT_EXAMPLES_PATH,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``(event_name, payload)`` of ``@octokit/webhooks-examples``, fresh copies."""
    for name, examples in _load_examples(path):
        for payload in examples:
            yield name, copy.deepcopy(payload)


def example_payload(event: str, action: str | None) -> dict[str, Any]:
    """The example for ``event``/``action``, preferring one sent to an App installation."""
    candidates = [
        payload
        for name, examples in _load_examples(DEFAULT_EXAMPLES_PATH)
        if name == event
        for payload in examples
    ]
    if not candidates:
        raise KeyError(event)
    best = min(candidates, key=lambda p: (p.get("action") != action, "installation" not in p))
    return copy.deepcopy(best)


def build_event(
    state: StateView,
    event: str,
    action: str | None,
    *,
    repo: Repo,
    pull: Pull,
    sender: str,
    comment: IssueComment | None = None,
    review: Review | None = None,
    changes: dict[str, Any] | None = None,
    before: str | None = None,
    after: str | None = None,
) -> dict[str, Any]:
    """A payload for ``event``: GitHub's example with the sandbox's repo, pull and users in it."""
    render = Renderer(state)
    payload: dict[str, Any] = render.rebase(example_payload(event, action))
    payload.pop("organization", None)
    payload.pop("enterprise", None)
    if action is not None:
        payload["action"] = action
    payload["repository"] = {**payload.get("repository", {}), **render.repository(repo)}
    payload["sender"] = render.login(sender)
    payload["installation"] = {
        "id": repo.installation_id,
        "node_id": f"I_{repo.installation_id}",
    }
    rest_pull = render.pull(repo, pull)
    if event == "pull_request":
        payload["number"] = pull.number
        payload["pull_request"] = {**payload["pull_request"], **rest_pull}
        if before is not None:
            payload["before"], payload["after"] = before, after
    elif event == "pull_request_review_comment" and comment is not None:
        # A comment on a line of the diff: GitHub sends the pull and the comment, no issue.
        payload["pull_request"] = {**payload["pull_request"], **rest_pull}
        rendered = render.comment(repo, comment)
        payload["comment"] = {
            **payload["comment"],
            **{k: rendered[k] for k in ("id", "body", "user", "created_at", "updated_at")},
            "html_url": f"{rest_pull['html_url']}#discussion_r{comment.id}",
            "pull_request_url": rest_pull["url"],
        }
    elif event == "pull_request_review" and review is not None:
        # GitHub sends the pull and the review, with the commit the reviewer looked at.
        payload["pull_request"] = {**payload["pull_request"], **rest_pull}
        html_url = f"{rest_pull['html_url']}#pullrequestreview-{review.id}"
        bot = state.user(review.user_login).type == "Bot"
        payload["review"] = {
            **payload["review"],
            "id": review.id,
            "node_id": f"PRR_{review.id}",
            "user": render.login(review.user_login),
            "body": review.body,
            "commit_id": review.commit_id,
            "submitted_at": iso(review.submitted_at),
            "state": review.state,
            "html_url": html_url,
            "pull_request_url": rest_pull["url"],
            "author_association": "NONE" if bot else "MEMBER",
            "_links": {"html": {"href": html_url}, "pull_request": {"href": rest_pull["url"]}},
        }
    elif event == "issue_comment" and comment is not None:
        payload["issue"] = _issue_of(payload["issue"], rest_pull, pull, render.base)
        payload["comment"] = {**payload["comment"], **render.comment(repo, comment)}
        if changes is not None:
            payload["changes"] = changes
        else:
            payload.pop("changes", None)
    return payload


def _issue_of(
    issue: dict[str, Any], rest_pull: dict[str, Any], pull: Pull, base: str
) -> dict[str, Any]:
    # On GitHub a pull request is also an issue; its issue carries a pull_request link block.
    api = rest_pull["issue_url"]
    issue.update(
        url=api,
        repository_url=api.rsplit("/issues/", 1)[0],
        labels_url=f"{api}/labels{{/name}}",
        comments_url=f"{api}/comments",
        events_url=f"{api}/events",
        html_url=rest_pull["html_url"],
        id=pull.id,
        node_id=f"I_{pull.id}",
        number=pull.number,
        title=pull.title,
        user=rest_pull["user"],
        labels=[],
        state=pull.state,
        locked=False,
        assignee=None,
        assignees=[],
        milestone=None,
        created_at=rest_pull["created_at"],
        updated_at=rest_pull["updated_at"],
        closed_at=rest_pull["closed_at"],
        body=pull.body,
        draft=pull.draft,
        pull_request={
            "url": rest_pull["url"],
            "html_url": rest_pull["html_url"],
            "diff_url": rest_pull["diff_url"],
            "patch_url": rest_pull["patch_url"],
            "merged_at": rest_pull["merged_at"],
        },
    )
    return issue


@dataclass
class Delivery:
    """One webhook delivery and what the receiver answered."""

    id: str
    event: str
    action: str | None
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    status_code: int | None = None
    error: str | None = None
    attempts: list[int | None] = field(default_factory=list)


class WebhookSender:
    """Signs and POSTs webhooks to the configured URL, recording every delivery."""

    def __init__(self, *, hook_id: int = 424242) -> None:
        self.url: str | None = None
        self.secret = ""
        self.hook_id = hook_id
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._attempted = threading.Condition(self._lock)

    def deliver(
        self, event: str, payload: dict[str, Any], *, installation_target_id: int
    ) -> Delivery:
        """Sign ``payload`` and POST it to the webhook URL."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": HOOKSHOT_USER_AGENT,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": str(self.hook_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(installation_target_id),
            "X-Hub-Signature": sign_webhook_sha1(self.secret, body),
            "X-Hub-Signature-256": sign_webhook(self.secret, body),
        }
        delivery = Delivery(delivery_id, event, payload.get("action"), payload, body, headers)
        with self._lock:
            self.deliveries.append(delivery)
        self._send(delivery)
        return delivery

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a recorded delivery again, byte for byte, with the same delivery id."""
        delivery = next(d for d in self.deliveries if d.id == delivery_id)
        self._send(delivery)
        return delivery

    def _send(self, delivery: Delivery) -> None:
        if self.url is None:
            raise RuntimeError("webhook URL is not configured")
        try:
            response = httpx.post(
                self.url,
                content=delivery.body,
                headers=delivery.headers,
                timeout=DELIVERY_TIMEOUT_S,
                verify=shared_tls(),  # a fresh connection per delivery, not a new CA load
            )
        except httpx.HTTPError as exc:
            delivery.status_code, delivery.error = None, type(exc).__name__
        else:
            delivery.status_code, delivery.error = response.status_code, None
        with self._attempted:
            delivery.attempts.append(delivery.status_code)
            self._attempted.notify_all()

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[Delivery]:
        """Block until ``count`` deliveries were attempted (deliveries made after a REST call
        run in the background); returns them, or raises TimeoutError."""
        with self._attempted:
            done = self._attempted.wait_for(
                lambda: sum(1 for d in self.deliveries if d.attempts) >= count, timeout=timeout
            )
            if not done:
                raise TimeoutError(f"fewer than {count} webhook deliveries within {timeout}s")
            return list(self.deliveries)
