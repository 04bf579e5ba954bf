"""Who may do what: one pure check for every door (PR comments and Slack alike)."""

from __future__ import annotations

from dataclasses import dataclass

from evaluators.policy import CanaryPolicy, ReviewPolicy

PERMISSION_RANK = {"none": 0, "read": 1, "triage": 1, "write": 2, "maintain": 3, "admin": 4}


@dataclass(frozen=True)
class ActorFacts:
    """What GitHub says about the person acting, gathered before the decision."""

    login: str
    permission: str  # admin | maintain | write | triage | read | none
    teams: frozenset[str]  # "org/team" entries from the policy the actor belongs to
    is_author: bool


@dataclass(frozen=True)
class Permit:
    allowed: bool
    reason: str


def _can_write(actor: ActorFacts) -> bool:
    return PERMISSION_RANK.get(actor.permission, 0) >= PERMISSION_RANK["write"]


def _listed(actor: ActorFacts, entries: list[str]) -> bool:
    users = {a.lower() for a in entries if "/" not in a}
    teams = {a.lower() for a in entries if "/" in a}
    return actor.login.lower() in users or bool({t.lower() for t in actor.teams} & teams)


def is_listed_approver(actor: ActorFacts, review: ReviewPolicy) -> bool:
    return _listed(actor, review.approvers)


def may_approve(actor: ActorFacts, review: ReviewPolicy, *, policy_changed: bool = False) -> Permit:
    """`policy_changed`: the PR rewrites `.shipyard.yml`, the gate itself; stricter rules hold."""
    if policy_changed:
        if actor.is_author:
            return Permit(False, "the author of a change to `.shipyard.yml` may not approve it")
        if review.policy_approvers:
            if _listed(actor, review.policy_approvers):
                return Permit(True, "listed policy approver")
            listed = ", ".join(f"`{a}`" for a in review.policy_approvers)
            return Permit(
                False,
                "this PR changes `.shipyard.yml`, so only `review.policy_approvers` may "
                f"approve it ({listed})",
            )
    if actor.is_author and not review.allow_author_approval:
        return Permit(False, "the PR author may not approve their own candidate")
    if review.approvers:
        if is_listed_approver(actor, review):
            return Permit(True, "listed approver")
        listed = ", ".join(f"`{a}`" for a in review.approvers)
        return Permit(False, f"only approvers listed in `.shipyard.yml` may approve ({listed})")
    # No approvers listed: fall back to maintainers of the registry.
    if PERMISSION_RANK.get(actor.permission, 0) >= PERMISSION_RANK["maintain"]:
        return Permit(True, "maintainer (no approvers listed in `.shipyard.yml`)")
    return Permit(
        False, "no approvers are listed in `.shipyard.yml`, so only maintainers may approve"
    )


def approval_binding(
    *, seen_head: str | None, current_head: str, again: str = "comment `/approve` again"
) -> Permit:
    """An approval counts only for the head its author could have seen when writing it.

    `again` says how to approve anew where the person acted (a comment, a Slack command).
    """
    if seen_head == current_head:
        return Permit(True, "written on the current head")
    if seen_head is None:
        return Permit(
            False,
            f"this was written before Shipyard saw `{current_head[:7]}` become the head. "
            f"Look at it and {again}",
        )
    return Permit(
        False,
        f"the head moved from `{seen_head[:7]}` to `{current_head[:7]}` after you wrote this. "
        f"Look at the new commit and {again}",
    )


def may_block(actor: ActorFacts) -> Permit:
    if _can_write(actor):
        return Permit(True, "write access")
    return Permit(False, "only people with write access to the registry may block")


def may_unblock(actor: ActorFacts, *, blockers: list[str]) -> Permit:
    if actor.login.lower() in {b.lower() for b in blockers}:
        return Permit(True, "the blocker")
    if actor.permission == "admin":
        return Permit(True, "repository admin")
    who = ", ".join(f"@{b}" for b in blockers) or "nobody"
    return Permit(False, f"only the blocker ({who}) or a repository admin may unblock")


def may_retest(actor: ActorFacts) -> Permit:
    if _can_write(actor) or actor.is_author:
        return Permit(True, "write access or author")
    return Permit(False, "only the author or people with write access may re-run the evaluation")


# The canary after a merge. Stopping is never harder than starting: anyone who may write may
# roll back or pause (fail safe), while skipping the remaining steps needs a named person.


def may_stop_canary(actor: ActorFacts) -> Permit:
    """/rollback and /pause."""
    if _can_write(actor):
        return Permit(True, "write access")
    return Permit(False, "only people with write access to the registry may stop a canary")


def may_resume_canary(actor: ActorFacts) -> Permit:
    if _can_write(actor):
        return Permit(True, "write access")
    return Permit(False, "only people with write access to the registry may resume a canary")


def may_acknowledge(actor: ActorFacts) -> Permit:
    if _can_write(actor):
        return Permit(True, "write access")
    return Permit(False, "only people with write access to the registry may acknowledge a page")


def promote_approvers(canary: CanaryPolicy, review: ReviewPolicy) -> list[str]:
    """Who may /promote: the canary's own list, else the review approvers."""
    return canary.promote_approvers or review.approvers


def may_promote(actor: ActorFacts, canary: CanaryPolicy, review: ReviewPolicy) -> Permit:
    """/promote skips the canary's remaining steps: the stricter list, when there is one."""
    if actor.is_author and not review.allow_author_approval:
        return Permit(False, "the PR author may not skip their own canary's steps")
    entries = promote_approvers(canary, review)
    if entries:
        if _listed(actor, entries):
            return Permit(True, "listed promote approver")
        which = "canary.promote_approvers" if canary.promote_approvers else "review.approvers"
        listed = ", ".join(f"`{a}`" for a in entries)
        return Permit(False, f"only `{which}` in `.shipyard.yml` may promote a canary ({listed})")
    if PERMISSION_RANK.get(actor.permission, 0) >= PERMISSION_RANK["maintain"]:
        return Permit(True, "maintainer (no approvers listed in `.shipyard.yml`)")
    return Permit(
        False, "no approvers are listed in `.shipyard.yml`, so only maintainers may promote"
    )
