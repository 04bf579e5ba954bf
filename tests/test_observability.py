"""Metric labels stay few (templated routes) and log lines carry the delivery and PR."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.base.observability import configure_logging, log_context, route_template

ROUTES = [
    ("a pull's files", "/repos/acme/reg/pulls/17/files", "/repos/{owner}/{repo}/pulls/{id}/files"),
    (
        "a content path",
        "/repos/acme/reg/contents/models/a/b.yml",
        "/repos/{owner}/{repo}/contents/{path}",
    ),
    ("a blob by sha", "/repos/acme/reg/git/blobs/ab12cd", "/repos/{owner}/{repo}/git/blobs/{ref}"),
    (
        "an installation token",
        "/app/installations/99/access_tokens",
        "/app/installations/{id}/access_tokens",
    ),
    (
        "a team membership",
        "/orgs/acme/teams/ml-reviewers/memberships/octo",
        "/orgs/{org}/teams/{team_slug}/memberships/{username}",
    ),
    ("a query string is dropped", "/repos/a/b/pulls/3?page=2", "/repos/{owner}/{repo}/pulls/{id}"),
    (
        "a collaborator",
        "/repos/a/b/collaborators/octo/permission",
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
    ),
]


@pytest.mark.parametrize(("path", "template"), [r[1:] for r in ROUTES], ids=[r[0] for r in ROUTES])
def test_route_template(path: str, template: str) -> None:
    assert route_template(path) == template


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_log_line_carries_the_delivery_id_and_pr_number(fmt: str) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(level="INFO", fmt=fmt, stream=stream)
        with log_context(delivery_id="d-123", pr_number=7):
            logging.getLogger("bot.test").warning("handled")
        logging.getLogger("bot.test").warning("outside")
    finally:
        root.handlers, root.level = saved[0], saved[1]
    first, second = stream.getvalue().splitlines()
    if fmt == "json":
        assert json.loads(first) | {"ts": None} == {
            "ts": None,
            "level": "WARNING",
            "logger": "bot.test",
            "message": "handled",
            "delivery_id": "d-123",
            "pr_number": 7,
        }
        assert "delivery_id" not in json.loads(second)
    else:
        assert "[delivery=d-123 pr=7] handled" in first
