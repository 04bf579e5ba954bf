"""A monitoring alert's GitHub issue: opened once per alert episode, then kept up to date.

One convergent outbox effect per (repo, key): `replace=True` stores the newest wanted title,
body and state, and the row's result keeps the issue's number, so the first run opens the issue
and every later run edits it (the newest submission wins; an identical one sends nothing).

Opening happens exactly once. A run that does not know the number yet first looks for the
issue: among the issues with the first label, created by the App's bot user, open or closed,
the oldest whose body holds this key's hidden marker (a digest, so nothing in the key can close
the comment). So a POST that GitHub carried out but whose answer was lost (a 502, a timeout, a
bot killed before it stored the answer) is found, never doubled; and the outbox's lease means
two replicas never run the same key at once. Labels are set when the issue is opened only:
later edits leave whatever labels people have put on it since.

A refusal (404 repository, 410 issues disabled, 422, no permission) fails the effect with one
of the fixed sentences below, never GitHub's words; server errors and lost answers leave it
pending, and the outbox tries again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.github.api import GitHubError, InstallationClient
from bot.github.objects import User
from bot.runtime import outbox
from bot.store.models import EffectStatus
from evaluators.escaping import one_line

log = logging.getLogger(__name__)

KIND = "monitor_issue"
MAX_TITLE = 256  # GitHub refuses longer issue titles
MAX_BODY = 65536  # ... and longer bodies
DEFAULT_TITLE = "Shipyard monitoring alert"
MAX_SEARCH_PAGES = 30  # 3,000 issues of the label; past that, opening one could double it

REFUSED = {
    404: "The registry repository was not found (or Shipyard cannot see it), so the alert has "
    "no GitHub issue.",
    410: "Issues are disabled in the registry repository, so the alert has no GitHub issue.",
    "forbidden": "Shipyard may not write issues in the registry repository: the alert's issue "
    "needs the App's issues write permission.",
    "gone": "The alert's GitHub issue was deleted or moved, so it is no longer updated.",
    "search": "Too many monitoring issues to be sure none is this alert's, so no issue was opened.",
    "other": "GitHub refused the alert's issue (its title, body or labels).",
}


class _GH(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Issue(_GH):
    number: int
    html_url: str | None = None
    body: str | None = None
    user: User | None = None


# -- what is written (pure) ---------------------------------------------------------------------


def issue_marker(key: str) -> str:
    """The hidden marker of the alert `key`'s issue."""
    return f"<!-- shipyard:monitor-issue {hashlib.sha256(key.encode()).hexdigest()[:16]} -->"


def issue_title(title: str) -> str:
    """The caller's title on one line within GitHub's limit (a default when it is empty)."""
    return one_line(title, max_length=MAX_TITLE) or DEFAULT_TITLE


def issue_body(body: str, *, marker: str) -> str:
    """The caller's Markdown, cut to fit GitHub's limit, with the marker last.

    An `<!--` in the caller's text is neutralised: unclosed, it would hide the marker, and a
    copied marker of another alert would make that alert's issue look like this one's.
    """
    tail = f"\n\n{marker}"
    text = body.replace("<!--", "&lt;!--")
    room = MAX_BODY - len(tail)
    if len(text) > room:
        text = text[: room - 1] + "…"
    return text + tail


# -- the effect ---------------------------------------------------------------------------------


def show_issue(
    rt: outbox.Runtime,
    *,
    installation_id: int,
    repo: str,
    key: str,
    title: str,
    body: str,
    closed: bool,
    labels: Sequence[str] = ("shipyard-monitoring",),
) -> outbox.EffectState:
    """Make the alert `key`'s issue in `repo` show this title, body and state (opened once);
    carried out now if it can be, else by the outbox's background retries."""
    effect = effect_key(repo, key)
    marker = issue_marker(key)
    payload = {
        "repo": repo,
        "marker": marker,
        "title": issue_title(title),
        "body": issue_body(body, marker=marker),
        "closed": closed,
        "labels": [one_line(label, max_length=50) for label in labels if label.strip()],
    }
    # Asking again re-arms an effect that gave up on transient failures; a refusal stays.
    retry = _gave_up_transiently(outbox.state_of(rt.store, effect))
    return outbox.submit(
        rt,
        key=effect,
        kind=KIND,
        payload=payload,
        installation_id=installation_id,
        replace=True,
        retry_failed=retry,
    )


def issue_number(state: outbox.EffectState) -> int | None:
    """The issue's number once it is known (also while a later edit is pending or refused)."""
    number = state.result.get("number")
    return int(number) if number is not None else None


def effect_key(repo: str, key: str) -> str:
    return outbox.effect_key(KIND, repo, key)


def _gave_up_transiently(state: outbox.EffectState) -> bool:
    status = state.error_status or 0
    return state.status is EffectStatus.FAILED and (status in (0, 429) or status >= 500)


# -- carrying it out ----------------------------------------------------------------------------


class _Refusal(Exception):
    def __init__(self, reason: str | int, status: int, detail: str) -> None:
        super().__init__(f"{reason}: {status}")
        self.reason, self.status, self.detail = reason, status, detail


def _run(attempt: outbox.Attempt) -> dict[str, Any]:
    """One attempt; a transient GitHubError propagates, so the outbox tries again later."""
    p = attempt.payload
    try:
        return _Show(attempt, p).run()
    except _Refusal as exc:
        log.warning(
            "monitoring issue in %s refused (%s): %s %s",
            p["repo"],
            exc.reason,
            exc.status,
            exc.detail[:200],
        )
        message = REFUSED["forbidden"] if exc.status in (401, 403) else REFUSED[exc.reason]
        raise outbox.EffectRefused(exc.status, message) from None


class _Show:
    """One run: find or open the issue, then make it show the wanted content."""

    def __init__(self, attempt: outbox.Attempt, payload: dict[str, Any]) -> None:
        self.attempt = attempt
        self.client: InstallationClient = attempt.client()
        self.p = payload
        self.repo: str = payload["repo"]

    def run(self) -> dict[str, Any]:
        known = self.attempt.result.get("number")
        if known is not None:
            return self._edit(int(known))
        found = self._find()
        if found is not None:
            return self._edit(found.number)
        created = _Issue.model_validate(
            self._ask(
                None,
                "POST",
                f"/repos/{self.repo}/issues",
                json={
                    "title": self.p["title"],
                    "body": self.p["body"],
                    "labels": self.p["labels"],
                },
            )
        )
        if self.p["closed"]:  # an issue is opened open; an alert already over is closed at once
            return self._edit(created.number)
        return {"number": created.number, "url": created.html_url}

    def _edit(self, number: int) -> dict[str, Any]:
        """PATCH to the wanted title, body and state (idempotent: the same edit twice is one)."""
        closed: bool = self.p["closed"]
        body: dict[str, Any] = {
            "title": self.p["title"],
            "body": self.p["body"],
            "state": "closed" if closed else "open",
        }
        if closed:
            body["state_reason"] = "completed"
        edited = _Issue.model_validate(
            self._ask("gone", "PATCH", f"/repos/{self.repo}/issues/{number}", json=body)
        )
        return {"number": edited.number, "url": edited.html_url}

    def _find(self) -> _Issue | None:
        """The oldest of our issues carrying the marker (an earlier run's, its answer lost)."""
        login = self._bot_login()
        params: dict[str, Any] = {
            "state": "all",
            "sort": "created",
            "direction": "asc",
            "per_page": 100,
        }
        if self.p["labels"]:
            params["labels"] = self.p["labels"][0]
        if login is not None:
            params["creator"] = login
        for page in range(1, MAX_SEARCH_PAGES + 1):
            listed = self._ask(
                None, "GET", f"/repos/{self.repo}/issues", params={**params, "page": page}
            )
            batch = listed if isinstance(listed, list) else []
            for raw in batch:
                if "pull_request" in raw:
                    continue  # the list holds pull requests too
                issue = _Issue.model_validate(raw)
                if self._ours(issue, login):
                    return issue
            if len(batch) < params["per_page"]:
                return None
        raise _Refusal("search", 0, "issue search truncated")

    def _ours(self, issue: _Issue, login: str | None) -> bool:
        # The marker alone is not enough: a person may paste it into an issue of their own.
        user = issue.user
        by_us = user is not None and (
            user.login == login if login is not None else user.type == "Bot"
        )
        return by_us and self.p["marker"] in (issue.body or "")

    def _bot_login(self) -> str | None:
        """`<app>[bot]` when the runtime can tell (a BotContext); else only Bots are trusted."""
        bot_login = getattr(self.attempt.rt.github, "bot_login", None)
        if not callable(bot_login):
            return None
        try:
            return str(bot_login())
        except GitHubError as exc:
            if outbox.is_transient(exc):
                raise
            raise _Refusal("other", exc.status, exc.github_message) from None

    def _ask(self, gone: str | None, method: str, path: str, **kw: Any) -> Any:
        try:
            return self.client.request(method, path, **kw)
        except GitHubError as exc:
            if outbox.is_transient(exc):
                raise  # in doubt: the next run looks before it writes again
            reason: str | int = exc.status if exc.status in (404, 410) else "other"
            if gone is not None and exc.status in (404, 410):
                reason = self._why_missing(gone)
            raise _Refusal(reason, exc.status, exc.github_message) from None

    def _why_missing(self, gone: str) -> str | int:
        """Whether a 404/410 on our issue is the issue's, the repository's or issues' (off)."""
        try:
            self.client.request("GET", f"/repos/{self.repo}/issues", params={"per_page": 1})
        except GitHubError as exc:
            if outbox.is_transient(exc):
                raise
            return exc.status if exc.status in (404, 410) else "other"
        return gone


outbox.register(KIND, _run)
