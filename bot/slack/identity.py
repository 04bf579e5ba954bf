"""Who a Slack user is on GitHub: only what the base branch's `slack.users` mapping says."""

from __future__ import annotations

from evaluators.policy import Policy


def slack_identity(*, team_id: str, user_id: str) -> str:
    """The mapping key: team and user ids, never a display name (anyone can change those)."""
    return f"{team_id}:{user_id}"


def github_login(policy: Policy, *, team_id: str, user_id: str) -> str | None:
    """The GitHub login a Slack user acts as, or None while they are not linked."""
    login = policy.slack.users.get(slack_identity(team_id=team_id, user_id=user_id), "")
    return login.strip() or None


def link_instructions(*, repo: str, base_ref: str, team_id: str, user_id: str) -> str:
    """What an unlinked user must do: add one reviewed line to the base branch's policy."""
    key = slack_identity(team_id=team_id, user_id=user_id)
    return (
        f"Your Slack account is not linked to a GitHub login for `{repo}`, so nothing was done.\n"
        f"To link it, open a pull request that adds this line under `slack.users` in "
        f"`.shipyard.yml` on `{base_ref}` (it takes effect once merged):\n"
        f'```\nslack:\n  users:\n    "{key}": your-github-login\n```'
    )
