"""The sentence a PR shows for each kind of failure: actionable, and never the exception text."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from bot.github.api import GitHubAuthError, GitHubError
from bot.github.lfs import LfsError
from bot.promotion.failure_messages import describe_failure, transient_cause
from evaluators.policy import PolicyError

SECRET_SQL = "SELECT token FROM secrets WHERE id = 1"

CASES = [
    (
        "github answering 502 is temporary and asks for a retest",
        GitHubError("GET", "/repos/a/b/git/blobs/1", 502, "Server Error"),
        "github",
        "GitHub did not answer reliably",
    ),
    (
        "github not answering at all is temporary",
        GitHubError("GET", "/repos/a/b/git/trees/1", 0, "ReadTimeout"),
        "github",
        "GitHub did not answer reliably",
    ),
    (
        "a database cut names the database and the error id",
        OperationalError(SECRET_SQL, {}, Exception("server closed the connection")),
        "database",
        "lost the connection to its own database",
    ),
    (
        "a refused installation token asks an admin to check the installation",
        GitHubAuthError("POST", "/app/installations/1/access_tokens", 404, "Not Found"),
        None,
        "still installed here",
    ),
    (
        "a forbidden read asks an admin to check permissions",
        GitHubError("GET", "/repos/a/b/contents/x", 403, "Resource not accessible"),
        None,
        "check the App's permissions",
    ),
    (
        "a vanished commit suggests pushing again",
        GitHubError("GET", "/repos/a/b/git/trees/1", 404, "Not Found"),
        None,
        "no longer on GitHub",
    ),
    ("a broken lfs object says how to push it", LfsError(SECRET_SQL), None, "git lfs push"),
    (
        "an invalid base policy points at shipyard check",
        PolicyError(SECRET_SQL),
        None,
        "shipyard check",
    ),
    (
        "anything else is an internal error with an id to quote",
        KeyError(SECRET_SQL),
        None,
        "internal error while evaluating; it was logged as e1d2",
    ),
]


@pytest.mark.parametrize(
    ("error", "cause", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_failure_sentence(error: Exception, cause: str | None, phrase: str) -> None:
    assert transient_cause(error) == cause
    sentence = describe_failure(error, error_id="e1d2", attempts=5)
    assert phrase in sentence
    assert "/retest" in sentence
    for leak in (SECRET_SQL, str(error), "/repos/", "Error", "Traceback"):
        assert leak not in sentence
