"""The promotion gate as a pure function of the stored record: table-driven."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.gate_decision import (
    ApprovalView,
    BlockView,
    CandidateView,
    EvaluationView,
    GateConclusion,
    PromotionState,
    decide_gate,
    pr_fingerprint,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SHA = "a" * 40
OLD = "b" * 40
ELIGIBLE = EvaluationView("churn", "completed", "auto_promote_eligible", "f1", base_ref="main")
REVIEW = EvaluationView(
    "churn", "completed", "needs_review", "f1", reasons=("segment x",), base_ref="main"
)
BASE = PromotionState(
    repository="acme/registry",
    pr_number=7,
    head_sha=SHA,
    author="ds",
    candidates=(CandidateView("churn", True, "registered"),),
    evaluations=(ELIGIBLE,),
    approvals=(),
    blocks=(),
    required_approvals=1,
    allow_author_approval=False,
    window_ends_at=NOW + timedelta(hours=3),
)


def approval(
    login: str, *, sha: str = SHA, evaluations: tuple[EvaluationView, ...] = (REVIEW,)
) -> ApprovalView:
    fingerprint = pr_fingerprint(evaluations)
    assert fingerprint is not None
    return ApprovalView(login, sha, fingerprint, NOW)


@dataclass(frozen=True)
class Case:
    id: str
    state: PromotionState
    conclusion: GateConclusion | None
    title: str


CASES = [
    Case(
        "a merged PR is success",
        replace(BASE, merged=True),
        GateConclusion.SUCCESS,
        "Merged by Shipyard",
    ),
    Case(
        "a PR touching no model passes",
        replace(BASE, candidates=(), evaluations=()),
        GateConclusion.SUCCESS,
        "No model directory changed",
    ),
    Case(
        "a block stops even a PR touching no model",
        replace(BASE, candidates=(), blocks=(BlockView("oncall", "freeze", NOW),)),
        GateConclusion.FAILURE,
        "Blocked by oncall: freeze",
    ),
    Case(
        "a rejected candidate fails",
        replace(BASE, candidates=(CandidateView("churn", False, "pickle refused"),)),
        GateConclusion.FAILURE,
        "A candidate failed registration",
    ),
    Case(
        "a running evaluation leaves the gate in progress",
        replace(BASE, evaluations=(replace(ELIGIBLE, status="in_progress"),)),
        None,
        "Evaluating churn",
    ),
    Case(
        "a failed evaluation fails until retested",
        replace(BASE, evaluations=(replace(ELIGIBLE, status="failed"),)),
        GateConclusion.FAILURE,
        "Evaluation did not complete",
    ),
    Case(
        "a fail verdict fails",
        replace(BASE, evaluations=(replace(ELIGIBLE, decision="fail"),)),
        GateConclusion.FAILURE,
        "worse than production",
    ),
    Case(
        "a clear improvement waits out its window",
        BASE,
        GateConclusion.ACTION_REQUIRED,
        "merges automatically at 2026-11-24 15:00 UTC",
    ),
    Case(
        "a clear improvement passes once the window is over",
        replace(BASE, window_ends_at=NOW - timedelta(minutes=1)),
        GateConclusion.SUCCESS,
        "review window over",
    ),
    Case(
        "a block beats an ended window",
        replace(
            BASE,
            window_ends_at=NOW - timedelta(minutes=1),
            blocks=(BlockView("oncall", "holiday freeze", NOW),),
        ),
        GateConclusion.FAILURE,
        "Blocked by oncall: holiday freeze",
    ),
    Case(
        "needs review without approvals asks for one",
        replace(BASE, evaluations=(REVIEW,), window_ends_at=None),
        GateConclusion.ACTION_REQUIRED,
        "Needs review",
    ),
    Case(
        "an approval for this SHA and evidence passes",
        replace(BASE, evaluations=(REVIEW,), approvals=(approval("lead"),)),
        GateConclusion.SUCCESS,
        "Approved for promotion",
    ),
    Case(
        "an approval for an older SHA does not count",
        replace(BASE, evaluations=(REVIEW,), approvals=(approval("lead", sha=OLD),)),
        GateConclusion.ACTION_REQUIRED,
        "Needs review",
    ),
    Case(
        "an approval of other evidence does not count",
        replace(
            BASE,
            evaluations=(REVIEW,),
            approvals=(approval("lead", evaluations=(replace(REVIEW, fingerprint="f2"),)),),
        ),
        GateConclusion.ACTION_REQUIRED,
        "Needs review",
    ),
    Case(
        "an approval given against another base branch does not count",
        replace(
            BASE,
            evaluations=(REVIEW,),
            approvals=(approval("lead", evaluations=(replace(REVIEW, base_ref="dev"),)),),
        ),
        GateConclusion.ACTION_REQUIRED,
        "Needs review",
    ),
    Case(
        "the author's own approval does not count",
        replace(BASE, evaluations=(REVIEW,), approvals=(approval("ds"),)),
        GateConclusion.ACTION_REQUIRED,
        "Needs review",
    ),
    Case(
        "the same person approving twice is one approval",
        replace(
            BASE,
            evaluations=(REVIEW,),
            required_approvals=2,
            approvals=(approval("lead"), approval("lead")),
        ),
        GateConclusion.ACTION_REQUIRED,
        "Needs review",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gate(case: Case) -> None:
    decision = decide_gate(case.state, now=NOW)
    assert decision.conclusion == case.conclusion
    assert case.title in decision.title
