"""Ask GitHub what the authorisation check needs to know about a person."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from bot.github.api import InstallationClient
from bot.promotion.authorization import ActorFacts
from evaluators.policy import ReviewPolicy


class _Permission(BaseModel):
    permission: str


class _Membership(BaseModel):
    state: str


def gather(
    client: InstallationClient,
    *,
    repo: str,
    login: str,
    author: str,
    review: ReviewPolicy,
    also: Sequence[str] = (),
) -> ActorFacts:
    """Repository permission, and membership of each `org/team` approver entry (of `review`,
    and of `also`: other lists of people, such as `canary.promote_approvers`)."""
    permission = client.get_optional(f"/repos/{repo}/collaborators/{login}/permission", _Permission)
    teams = set()
    for entry in dict.fromkeys([*review.approvers, *review.policy_approvers, *also]):
        if "/" not in entry:
            continue
        org, team = entry.split("/", 1)
        membership = client.get_optional(
            f"/orgs/{org}/teams/{team}/memberships/{login}", _Membership
        )
        if membership is not None and membership.state == "active":
            teams.add(entry)
    return ActorFacts(
        login=login,
        permission=permission.permission if permission else "none",
        teams=frozenset(teams),
        is_author=login.lower() == author.lower(),
    )
