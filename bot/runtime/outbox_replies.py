"""A command's answer in the PR conversation, and its reaction, as outbox effects.

The answer is part of the command's effect: it is recorded with a key derived from the
comment that gave the command, so a redelivery or a retry never answers twice, and a reply
GitHub could not take is posted later by the tick. Each reply carries a hidden marker with
its key; before posting again after an attempt whose outcome is unknown, the conversation is
searched for that marker.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bot.runtime import outbox

REPLY = "command_reply"
REACTION = "reaction"


def reply_marker(key: str) -> str:
    # A digest: the key's parts never reach the HTML comment, so nothing can close it early.
    return f"<!-- shipyard:reply:{hashlib.sha256(key.encode()).hexdigest()[:32]} -->"


def post_reply(
    rt: outbox.Runtime,
    *,
    installation_id: int,
    key: str,
    repo: str,
    issue_number: int,
    body: str,
) -> outbox.EffectState:
    """Answer once in the PR conversation (now, or later if GitHub cannot take it now)."""
    key = outbox.effect_key("reply", key)
    return outbox.submit(
        rt,
        key=key,
        kind=REPLY,
        payload={
            "repo": repo,
            "issue_number": issue_number,
            "body": f"{body}\n\n{reply_marker(key)}",
            "marker": reply_marker(key),
        },
        installation_id=installation_id,
    )


def react(
    rt: outbox.Runtime, *, installation_id: int, repo: str, comment_id: int, content: str
) -> outbox.EffectState:
    """A reaction on a comment; GitHub answers a repeated one with the same reaction."""
    return outbox.submit(
        rt,
        key=outbox.effect_key("reaction", repo, comment_id, content),
        kind=REACTION,
        payload={"repo": repo, "comment_id": comment_id, "content": content},
        installation_id=installation_id,
    )


def _reply(attempt: outbox.Attempt) -> dict[str, Any]:
    client = attempt.client()
    repo, number = attempt.payload["repo"], attempt.payload["issue_number"]
    if attempt.in_doubt:
        marker = attempt.payload["marker"]
        for comment in client.paginate(f"/repos/{repo}/issues/{number}/comments"):
            user = comment.get("user") or {}
            if marker in str(comment.get("body", "")) and user.get("type") == "Bot":
                return {"comment_id": int(comment["id"]), "found": True}
    created = client.request(
        "POST",
        f"/repos/{repo}/issues/{number}/comments",
        json={"body": attempt.payload["body"]},
    )
    return {"comment_id": int(created["id"])}


def _reaction(attempt: outbox.Attempt) -> dict[str, Any]:
    p = attempt.payload
    created = attempt.client().request(
        "POST",
        f"/repos/{p['repo']}/issues/comments/{p['comment_id']}/reactions",
        json={"content": p["content"]},
    )
    return {"reaction_id": int(created["id"])} if isinstance(created, dict) else {}


outbox.register(REPLY, _reply)
outbox.register(REACTION, _reaction)
