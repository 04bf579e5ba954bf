"""The one Shipyard comment per PR: found by a hidden marker, edited only when its text changes."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from bot.github_api import InstallationClient
from bot.store.db import Store
from bot.store.models import BotComment

MARKER = "<!-- shipyard:pr-report -->"
COMMENT_LIMIT = 65_536
KIND = "report"


def upsert_report_comment(
    *, client: InstallationClient, store: Store, repo: str, pr_number: int, body: str
) -> int:
    """Create the report comment, or edit it in place if the rendered text changed."""
    body = MARKER + "\n" + body
    if len(body) > COMMENT_LIMIT:
        body = body[: COMMENT_LIMIT - 200] + "\n\n… (cut to fit GitHub's comment limit)"
    digest = hashlib.sha256(body.encode()).hexdigest()
    with store.session() as session:
        row = session.scalar(
            select(BotComment).where(
                BotComment.repository == repo,
                BotComment.pr_number == pr_number,
                BotComment.kind == KIND,
            )
        )
        known = (row.comment_id, row.body_sha256) if row else None
    if known is not None and known[1] == digest:
        return known[0]
    comment_id = known[0] if known else _find_existing(client, repo, pr_number)
    if comment_id is None:
        created = client.request(
            "POST", f"/repos/{repo}/issues/{pr_number}/comments", json={"body": body}
        )
        comment_id = int(created["id"])
    else:
        client.request("PATCH", f"/repos/{repo}/issues/comments/{comment_id}", json={"body": body})
    with store.session() as session:
        row = session.scalar(
            select(BotComment).where(
                BotComment.repository == repo,
                BotComment.pr_number == pr_number,
                BotComment.kind == KIND,
            )
        )
        if row is None:
            session.add(
                BotComment(
                    repository=repo,
                    pr_number=pr_number,
                    kind=KIND,
                    comment_id=comment_id,
                    body_sha256=digest,
                )
            )
        else:
            row.comment_id = comment_id
            row.body_sha256 = digest
    return comment_id


def _find_existing(client: InstallationClient, repo: str, pr_number: int) -> int | None:
    """After a crash between posting and recording, the marker finds our comment again."""
    for comment in client.paginate(f"/repos/{repo}/issues/{pr_number}/comments"):
        user = comment.get("user") or {}
        if str(comment.get("body", "")).startswith(MARKER) and user.get("type") == "Bot":
            return int(comment["id"])
    return None
