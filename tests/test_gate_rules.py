"""Pure rules the promotion gate rests on: what a PR changes, who may approve, which head counts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.github.objects import PullFile
from bot.github.registry_reader import PullChanges, classify_changes
from bot.promotion.authorization import ActorFacts, Permit, approval_binding, may_approve
from evaluators.policy import ReviewPolicy


def _files(*paths: str, renamed_from: str | None = None) -> list[PullFile]:
    files = [PullFile(filename=p, status="modified") for p in paths]
    if renamed_from is not None:
        files[-1] = PullFile(filename=paths[-1], status="renamed", previous_filename=renamed_from)
    return files


@dataclass(frozen=True)
class ChangeCase:
    id: str
    files: list[PullFile]
    listed_in_full: bool
    expected: PullChanges


CHANGES = [
    ChangeCase(
        "files inside a model directory are all gated",
        _files("models/churn/config.yaml", "models/churn/weights/model.onnx"),
        True,
        PullChanges(complete=True, models=("churn",)),
    ),
    ChangeCase(
        "the policy file is outside and flagged",
        _files("models/churn/config.yaml", ".shipyard.yml"),
        True,
        PullChanges(
            complete=True,
            models=("churn",),
            outside=(".shipyard.yml",),
            outside_count=1,
            policy_changed=True,
        ),
    ),
    ChangeCase(
        "a workflow and CODEOWNERS are outside",
        _files(".github/workflows/x.yml", "CODEOWNERS"),
        True,
        PullChanges(
            complete=True, outside=(".github/workflows/x.yml", "CODEOWNERS"), outside_count=2
        ),
    ),
    ChangeCase(
        "a file directly in the models root is outside",
        _files("models/README.md"),
        True,
        PullChanges(complete=True, outside=("models/README.md",), outside_count=1),
    ),
    ChangeCase(
        "a dot-dot directory name is not a model",
        _files("models/../.shipyard.yml"),
        True,
        PullChanges(complete=True, outside=("models/../.shipyard.yml",), outside_count=1),
    ),
    ChangeCase(
        "a rename out of the policy file counts its old path",
        _files("models/churn/notes.md", renamed_from=".shipyard.yml"),
        True,
        PullChanges(
            complete=True,
            models=("churn",),
            outside=(".shipyard.yml",),
            outside_count=1,
            policy_changed=True,
        ),
    ),
    ChangeCase(
        "an incompletely listed PR is not complete whatever it shows",
        _files("models/churn/config.yaml"),
        False,
        PullChanges(complete=False),
    ),
]


@pytest.mark.parametrize("case", CHANGES, ids=[c.id for c in CHANGES])
def test_what_a_pr_changes(case: ChangeCase) -> None:
    got = classify_changes(case.files, "models", listed_in_full=case.listed_in_full)
    if not case.expected.complete:
        assert not got.complete and "3,000" in got.problem
        return
    assert got == case.expected


def _actor(login: str, *, author: bool = False, teams: frozenset[str] = frozenset()) -> ActorFacts:
    return ActorFacts(login=login, permission="write", teams=teams, is_author=author)


REVIEW = ReviewPolicy(approvers=["lead-ml"], policy_approvers=["platform", "acme/owners"])
PLAIN = ReviewPolicy(approvers=["lead-ml", "ds"], allow_author_approval=True)


@dataclass(frozen=True)
class ApproveCase:
    id: str
    actor: ActorFacts
    review: ReviewPolicy
    policy_changed: bool
    allowed: bool
    reason: str


APPROVALS = [
    ApproveCase(
        "a listed approver approves a model change",
        _actor("lead-ml"),
        REVIEW,
        False,
        True,
        "listed approver",
    ),
    ApproveCase(
        "a listed approver may not approve a policy change when policy approvers are set",
        _actor("lead-ml"),
        REVIEW,
        True,
        False,
        "only `review.policy_approvers`",
    ),
    ApproveCase(
        "a policy approver approves a policy change",
        _actor("platform"),
        REVIEW,
        True,
        True,
        "policy approver",
    ),
    ApproveCase(
        "a policy approver team member approves a policy change",
        _actor("someone", teams=frozenset({"acme/owners"})),
        REVIEW,
        True,
        True,
        "policy approver",
    ),
    ApproveCase(
        "the author never approves their own policy change",
        _actor("ds", author=True),
        PLAIN,
        True,
        False,
        "author of a change to `.shipyard.yml`",
    ),
    ApproveCase(
        "without policy approvers a policy change needs a listed approver",
        _actor("lead-ml"),
        PLAIN,
        True,
        True,
        "listed approver",
    ),
]


@pytest.mark.parametrize("case", APPROVALS, ids=[c.id for c in APPROVALS])
def test_who_may_approve(case: ApproveCase) -> None:
    permit = may_approve(case.actor, case.review, policy_changed=case.policy_changed)
    assert permit.allowed is case.allowed
    assert case.reason in permit.reason


@pytest.mark.parametrize(
    "seen, current, expected",
    [
        ("a" * 40, "a" * 40, Permit(True, "written on the current head")),
        ("a" * 40, "b" * 40, None),
        (None, "b" * 40, None),
    ],
    ids=[
        "an approval written on the current head binds to it",
        "an approval written before a push is refused",
        "an approval written before the bot saw any head is refused",
    ],
)
def test_an_approval_binds_to_the_head_its_author_saw(
    seen: str | None, current: str, expected: Permit | None
) -> None:
    permit = approval_binding(seen_head=seen, current_head=current)
    if expected is not None:
        assert permit == expected
    else:
        assert not permit.allowed and "comment `/approve` again" in permit.reason
