"""Publish a check run for (repo, SHA, name) exactly once, then update it in place.

Each (repo, SHA, name) is one convergent outbox effect: the newest requested state wins, and
a create whose answer was lost is found by name and `external_id` instead of made twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.github.api import InstallationClient
from bot.github.objects import CheckRun, CheckRunList
from bot.runtime import outbox
from bot.store.db import Store
from bot.store.models import CheckRunRecord

SUMMARY_LIMIT = 65_535  # GitHub rejects longer check-run summaries and texts


@dataclass(frozen=True)
class CheckOutput:
    title: str
    summary: str
    text: str | None = None


def publish(
    *,
    client: InstallationClient,
    store: Store,
    now: datetime,
    repo: str,
    head_sha: str,
    name: str,
    status: str,
    conclusion: str | None = None,
    output: CheckOutput | None = None,
    external_id: str | None = None,
    details_url: str | None = None,
    version: int | None = None,
) -> None:
    """Ask for our check run to show this state; created once, then updated in place.

    `version` orders states computed concurrently: an older one never replaces a newer one.
    """
    body: dict[str, object] = {"status": status}
    if conclusion is not None:
        body["conclusion"] = conclusion
        body["completed_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if output is not None:
        out: dict[str, str] = {
            "title": output.title[:1000],
            "summary": _clip(output.summary),
        }
        if output.text:
            out["text"] = _clip(output.text)
        body["output"] = out
    if external_id is not None:
        body["external_id"] = external_id
    if details_url is not None:
        body["details_url"] = details_url

    outbox.submit(
        outbox.Local(store=store, client=client),
        key=outbox.effect_key("check", repo, head_sha, name),
        kind=KIND,
        payload={"repo": repo, "head_sha": head_sha, "name": name, "body": body},
        installation_id=client.installation_id,
        replace=True,
        version=version,
    )


def _clip(text: str) -> str:
    if len(text) <= SUMMARY_LIMIT:
        return text
    note = "\n\n… (truncated: the full report is linked above)"
    return text[: SUMMARY_LIMIT - len(note)] + note


def _run(attempt: outbox.Attempt) -> dict[str, Any]:
    client = attempt.client()
    repo, head_sha, name = (attempt.payload[k] for k in ("repo", "head_sha", "name"))
    body: dict[str, Any] = attempt.payload["body"]
    check_id = attempt.result.get("check_run_id") or _find_existing(
        client, repo, head_sha, name, body.get("external_id")
    )
    if check_id is None:
        created = CheckRun.model_validate(
            client.request(
                "POST",
                f"/repos/{repo}/check-runs",
                json={"name": name, "head_sha": head_sha, **body},
            )
        )
        check_id = created.id
    else:  # updating our own run to a given state is idempotent
        client.request("PATCH", f"/repos/{repo}/check-runs/{check_id}", json=body)
    _remember(
        attempt.rt.store,
        attempt.rt.clock.now(),
        repo,
        head_sha,
        name,
        int(check_id),
        str(body["status"]),
        body.get("conclusion"),
    )
    return {"check_run_id": int(check_id)}


def _find_existing(
    client: InstallationClient, repo: str, head_sha: str, name: str, external_id: object
) -> int | None:
    """A create whose answer was lost is found by name and `external_id` before creating again."""
    found = CheckRunList.model_validate(
        client.request(
            "GET",
            f"/repos/{repo}/commits/{head_sha}/check-runs",
            params={"check_name": name, "filter": "all", "per_page": 100},
        )
    )
    ours = [r for r in found.check_runs if r.name == name and r.head_sha == head_sha]
    if external_id is not None:
        ours = [r for r in ours if r.external_id in (external_id, None)] or ours
    return ours[0].id if ours else None


def _remember(
    store: Store,
    now: datetime,
    repo: str,
    head_sha: str,
    name: str,
    check_id: int,
    status: str,
    conclusion: str | None,
) -> None:
    with store.session() as session:
        row = session.scalar(
            select(CheckRunRecord).where(
                CheckRunRecord.repository == repo,
                CheckRunRecord.head_sha == head_sha,
                CheckRunRecord.name == name,
            )
        )
        if row is None:
            row = CheckRunRecord(repository=repo, head_sha=head_sha, name=name)
            session.add(row)
        row.check_run_id = check_id
        row.status = status
        row.conclusion = conclusion
        row.updated_at = now


KIND = "check_run"
outbox.register(KIND, _run)
