"""The one Shipyard comment per PR: an outbox effect keyed by the PR, found again by its marker.

The outbox row (UNIQUE key `report:<repo>#<pr>`) is inserted before the comment is created,
so two replicas cannot both create it; its result keeps the comment id, so every later
rendering edits that comment. Before creating, the conversation is searched for the marker:
a create whose answer was lost (502, timeout, crash) is found, not repeated.
"""

from __future__ import annotations

from typing import Any

from bot.github.api import GitHubError, InstallationClient
from bot.runtime import outbox
from bot.store.db import Store

MARKER = "<!-- shipyard:pr-report -->"
COMMENT_LIMIT = 65_536
KIND = "report_comment"


def report_key(repo: str, pr_number: int) -> str:
    return outbox.effect_key("report", f"{repo}#{pr_number}")


def upsert_report_comment(
    *,
    client: InstallationClient,
    store: Store,
    repo: str,
    pr_number: int,
    body: str,
    version: int | None = None,
) -> outbox.EffectState:
    """Make the PR's report comment say `body` (created once, then edited in place).

    `version` orders renderings: one made from older state never replaces a newer one.
    """
    body = MARKER + "\n" + body
    if len(body) > COMMENT_LIMIT:
        body = body[: COMMENT_LIMIT - 200] + "\n\n… (cut to fit GitHub's comment limit)"
    return outbox.submit(
        outbox.Local(store=store, client=client),
        key=report_key(repo, pr_number),
        kind=KIND,
        payload={"repo": repo, "pr_number": pr_number, "body": body},
        installation_id=client.installation_id,
        replace=True,
        version=version,
    )


def has_report_comment(store: Store, *, repo: str, pr_number: int) -> bool:
    """Whether this PR's report comment was ever asked for (so it must be kept current)."""
    return outbox.result_of(store, report_key(repo, pr_number)) is not None


def _run(attempt: outbox.Attempt) -> dict[str, Any]:
    client = attempt.client()
    repo, number, body = (attempt.payload[k] for k in ("repo", "pr_number", "body"))
    comment_id = attempt.result.get("comment_id") or _find_existing(attempt, repo, number)
    if comment_id is not None:
        try:  # editing our own comment to a given text is idempotent
            client.request(
                "PATCH", f"/repos/{repo}/issues/comments/{comment_id}", json={"body": body}
            )
            return {"comment_id": int(comment_id)}
        except GitHubError as exc:
            if exc.status != 404:
                raise
            # Someone deleted it: a new one is the only way to show the current state.
    created = client.request("POST", f"/repos/{repo}/issues/{number}/comments", json={"body": body})
    return {"comment_id": int(created["id"])}


def _find_existing(attempt: outbox.Attempt, repo: str, pr_number: int) -> int | None:
    """A create whose answer was lost, or made before the outbox existed, is found by marker."""
    for comment in attempt.client().paginate(f"/repos/{repo}/issues/{pr_number}/comments"):
        user = comment.get("user") or {}
        if str(comment.get("body", "")).startswith(MARKER) and user.get("type") == "Bot":
            return int(comment["id"])
    return None


outbox.register(KIND, _run)
