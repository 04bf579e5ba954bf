"""Publish a check run for (repo, SHA, name) exactly once, then update it in place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.github_api import InstallationClient
from bot.github_types import CheckRun, CheckRunList
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
) -> int:
    """Create or update our check run; a retry after a crash finds the existing run."""
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

    check_id = _known_id(client, store, repo, head_sha, name)
    if check_id is None:
        created = CheckRun.model_validate(
            client.request(
                "POST",
                f"/repos/{repo}/check-runs",
                json={"name": name, "head_sha": head_sha, **body},
            )
        )
        check_id = created.id
    else:
        client.request("PATCH", f"/repos/{repo}/check-runs/{check_id}", json=body)
    _remember(store, now, repo, head_sha, name, check_id, status, conclusion)
    return check_id


def _clip(text: str) -> str:
    if len(text) <= SUMMARY_LIMIT:
        return text
    note = "\n\n… (truncated: the full report is linked above)"
    return text[: SUMMARY_LIMIT - len(note)] + note


def _known_id(
    client: InstallationClient, store: Store, repo: str, head_sha: str, name: str
) -> int | None:
    with store.session() as session:
        row = session.scalar(
            select(CheckRunRecord).where(
                CheckRunRecord.repository == repo,
                CheckRunRecord.head_sha == head_sha,
                CheckRunRecord.name == name,
            )
        )
        if row is not None:
            return row.check_run_id
    # Not in our store: perhaps we created it and crashed before recording. Ask GitHub.
    found = CheckRunList.model_validate(
        client.request(
            "GET",
            f"/repos/{repo}/commits/{head_sha}/check-runs",
            params={"check_name": name, "filter": "latest", "per_page": 100},
        )
    )
    for run in found.check_runs:
        if run.name == name and run.head_sha == head_sha:
            return run.id
    return None


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
