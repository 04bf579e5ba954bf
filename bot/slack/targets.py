"""Which pull request a Slack command names: `owner/repo#123` or the PR's URL."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SHORT = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)#(?P<number>\d{1,9})$")
# Slack wraps URLs it recognises as <url> or <url|label>.
_URL = re.compile(
    r"^<?https?://[^/\s|>]+/(?P<repo>[\w.-]+/[\w.-]+)/pull/(?P<number>\d{1,9})/?(?:\|[^>]*)?>?$"
)


@dataclass(frozen=True)
class PullTarget:
    repo: str
    number: int

    def __str__(self) -> str:
        return f"{self.repo}#{self.number}"


def parse_target(word: str) -> PullTarget | None:
    """`owner/repo#123`, `https://github.com/owner/repo/pull/123`, or None."""
    match = _SHORT.match(word) or _URL.match(word)
    if match is None or int(match["number"]) < 1:
        return None
    return PullTarget(repo=match["repo"], number=int(match["number"]))
