"""What a PR shows when an evaluation fails: a sentence someone can act on, never a traceback.

Exception texts can carry SQL, hostnames, paths or tokens; they go to the operator's log
under a short id, and the PR gets the sentence for the failure's class plus that id.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from bot.github.api import GitHubAuthError, GitHubError
from bot.github.lfs import LfsError
from evaluators.policy import PolicyError

RETEST = "Comment `/retest` to try again."


def transient_cause(exc: BaseException) -> str | None:
    """'github' or 'database' when waiting and trying again may help; None otherwise."""
    if isinstance(exc, GitHubError) and (exc.status in (0, 429) or exc.status >= 500):
        return "github"
    if isinstance(exc, (OperationalError, DisconnectionError)):
        return "database"
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "database"
    return None


def describe_failure(exc: BaseException, *, error_id: str, attempts: int) -> str:
    """One or two sentences for the check run; the id finds the full error in the logs."""
    tried = f"Shipyard tried {attempts} time{'s' if attempts != 1 else ''}"
    cause = transient_cause(exc)
    if cause == "github":
        return (
            f"GitHub did not answer reliably while Shipyard read this pull request "
            f"({tried}). This is usually temporary. {RETEST}"
        )
    if cause == "database":
        return (
            f"Shipyard lost the connection to its own database while evaluating ({tried}). "
            f"{RETEST} If it keeps happening, tell the Shipyard operators (error {error_id})."
        )
    if isinstance(exc, GitHubAuthError):
        return (
            "GitHub refused Shipyard access to this repository (the App's installation "
            "token could not be issued). Ask a repository administrator to check that the "
            f"Shipyard App is still installed here, then comment `/retest` (error {error_id})."
        )
    if isinstance(exc, GitHubError) and exc.status in (401, 403):
        return (
            "Shipyard's GitHub App is not allowed to read what this evaluation needs. Ask a "
            f"repository administrator to check the App's permissions, then {RETEST.lower()}"
        )
    if isinstance(exc, GitHubError) and exc.status == 404:
        return (
            "A file or commit this evaluation needs is no longer on GitHub (was a branch "
            f"deleted or force-pushed?). Push again, or {RETEST.lower()}"
        )
    if isinstance(exc, LfsError):
        return (
            "A Git LFS file of the model could not be downloaded or did not match its "
            f"pointer. Check that it was pushed with `git lfs push`, then {RETEST.lower()}"
        )
    if isinstance(exc, PolicyError):
        return (
            "The `.shipyard.yml` on the base branch is not valid, so nothing can be judged "
            "against it. Run `shipyard check` on it, fix it on the base branch, then "
            f"{RETEST.lower()}"
        )
    return f"Shipyard hit an internal error while evaluating; it was logged as {error_id}. {RETEST}"
