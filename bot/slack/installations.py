"""Find the App installation covering a repository: `GET /repos/{owner}/{repo}/installation`."""

from __future__ import annotations

import httpx

from bot.base.tls import shared_tls
from bot.github.api import GitHubApp, GitHubError


def installation_for(github: GitHubApp, repo: str) -> int | None:
    """The installation id for `owner/name`, or None when the App is not installed there."""
    path = f"/repos/{repo}/installation"
    response = httpx.get(
        github.api_url + path,
        headers={
            "Authorization": f"Bearer {github.credentials.app_jwt()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
        timeout=30,
        verify=shared_tls(),
    )
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise GitHubError("GET", path, response.status_code, _message(response))
    return int(response.json()["id"])


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""
