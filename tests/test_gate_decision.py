"""The promotion gate as a pure function of the stored record: table-driven."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.promotion.gate_decision import (
    NO_MODEL_EVIDENCE,
    ApprovalView,
    BlockView,
    CandidateView,
    ChangeView,
    EvaluationView,
    GateConclusion,
    HeadSince,
    PromotionState,
    ShadowView,
    decide_gate,
    head_seen_at,
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
    changes=ChangeView(read=True, models=("churn",)),
    base_ref="main",
    production_branch="main",
)
NO_MODEL = replace(BASE, candidates=(), evaluations=(), window_ends_at=None)
POLICY_FILE = ChangeView(
    read=True, models=("churn",), outside=(".shipyard.yml",), outside_count=1, policy_changed=True
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
        "a PR that changes nothing passes",
        replace(NO_MODEL, changes=ChangeView(read=True)),
        GateConclusion.SUCCESS,
        "nothing to gate",
    ),
    Case(
        "a block stops even a PR touching no model",
        replace(
            NO_MODEL, changes=ChangeView(read=True), blocks=(BlockView("oncall", "freeze", NOW),)
        ),
        GateConclusion.FAILURE,
        "Blocked by oncall: freeze",
    ),
    Case(
        "a head whose changes are not recorded yet is never success",
        replace(BASE, changes=None, window_ends_at=NOW - timedelta(minutes=1)),
        None,
        "Reading what this PR changes",
    ),
    Case(
        "a truncated list of changed files fails closed",
        replace(
            BASE,
            changes=ChangeView(read=False, problem="GitHub lists at most 3,000"),
            window_ends_at=NOW - timedelta(minutes=1),
        ),
        GateConclusion.FAILURE,
        "could not be read",
    ),
    Case(
        "a PR into another branch is not a promotion",
        replace(BASE, base_ref="evil", window_ends_at=NOW - timedelta(minutes=1)),
        GateConclusion.ACTION_REQUIRED,
        "Not a promotion",
    ),
    Case(
        "an unknown default branch is not a promotion",
        replace(BASE, production_branch=None),
        GateConclusion.ACTION_REQUIRED,
        "Not a promotion",
    ),
    Case(
        "a touched model without a candidate check is never success",
        replace(
            BASE,
            changes=ChangeView(read=True, models=("churn", "fraud")),
            window_ends_at=NOW - timedelta(minutes=1),
        ),
        None,
        "Registering fraud",
    ),
    Case(
        "a touched model without an evaluation is never success",
        replace(
            BASE,
            candidates=(BASE.candidates[0], CandidateView("fraud", True, "registered")),
            changes=ChangeView(read=True, models=("churn", "fraud")),
            window_ends_at=NOW - timedelta(minutes=1),
        ),
        None,
        "Evaluating fraud",
    ),
    Case(
        "a clear improvement that also rewrites the policy never merges by itself",
        replace(BASE, changes=POLICY_FILE, window_ends_at=NOW - timedelta(minutes=1)),
        GateConclusion.ACTION_REQUIRED,
        "files outside the model directories need an authorised /approve",
    ),
    Case(
        "a clear improvement that adds a workflow needs a person",
        replace(
            BASE,
            changes=ChangeView(
                read=True,
                models=("churn",),
                outside=(".github/workflows/x.yml",),
                outside_count=1,
            ),
            window_ends_at=NOW - timedelta(minutes=1),
        ),
        GateConclusion.ACTION_REQUIRED,
        "files outside the model directories",
    ),
    Case(
        "a clear improvement with outside files passes once approved",
        replace(
            BASE,
            changes=POLICY_FILE,
            approvals=(approval("lead", evaluations=(ELIGIBLE,)),),
        ),
        GateConclusion.SUCCESS,
        "Approved for promotion",
    ),
    Case(
        "a README-only PR needs an authorised approve",
        replace(NO_MODEL, changes=ChangeView(read=True, outside=("README.md",), outside_count=1)),
        GateConclusion.ACTION_REQUIRED,
        "files outside the model directories",
    ),
    Case(
        "a README-only PR passes with an approval of its head",
        replace(
            NO_MODEL,
            changes=ChangeView(read=True, outside=("README.md",), outside_count=1),
            approvals=(ApprovalView("lead", SHA, NO_MODEL_EVIDENCE, NOW),),
        ),
        GateConclusion.SUCCESS,
        "Approved",
    ),
    Case(
        "a README-only approval of an older head does not count",
        replace(
            NO_MODEL,
            changes=ChangeView(read=True, outside=("README.md",), outside_count=1),
            approvals=(ApprovalView("lead", OLD, NO_MODEL_EVIDENCE, NOW),),
        ),
        GateConclusion.ACTION_REQUIRED,
        "files outside the model directories",
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


def test_the_gate_names_the_paths_that_need_a_person_inertly() -> None:
    changes = ChangeView(
        read=True,
        models=("churn",),
        outside=(".shipyard.yml", "a`b\nc.txt", *(f"f{i}" for i in range(12))),
        outside_count=20,
        policy_changed=True,
    )
    decision = decide_gate(
        replace(BASE, changes=changes, policy_approvers=("platform-owner",)), now=NOW
    )
    text = decision.summary()
    assert '".shipyard.yml"' in text
    assert '"a\\`b?c.txt"' in text  # a backtick is escaped, a newline cannot start a new line
    assert "and 10 more" in text
    assert 'only "platform-owner" may approve, and never its author' in text


A, B = "a" * 40, "b" * 40
T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SeenCase:
    id: str
    heads: tuple[HeadSince, ...]
    written: datetime
    seen: str | None


SEEN = [
    SeenCase("a comment on the only head saw it", (HeadSince(A, T),), T, A),
    SeenCase(
        "a comment written before a push saw the old head",
        (HeadSince(A, T), HeadSince(B, T + timedelta(seconds=1))),
        T,
        A,
    ),
    SeenCase(
        "a comment written after a push saw the new head",
        (HeadSince(A, T), HeadSince(B, T + timedelta(seconds=1))),
        T + timedelta(seconds=2),
        B,
    ),
    SeenCase(
        "a push in the same second as the comment counts as not seen",
        (HeadSince(A, T), HeadSince(B, T + timedelta(seconds=1))),
        T + timedelta(seconds=1),
        A,
    ),
    SeenCase(
        "a comment before any recorded head saw nothing",
        (HeadSince(A, T),),
        T - timedelta(seconds=1),
        None,
    ),
    SeenCase(
        "a tie resolves to the head recorded first",
        (HeadSince(A, T), HeadSince(B, T)),
        T,
        A,
    ),
]


@pytest.mark.parametrize("case", SEEN, ids=[c.id for c in SEEN])
def test_the_head_a_comment_author_saw(case: SeenCase) -> None:
    assert head_seen_at(case.heads, case.written) == case.seen


# -- shadow traffic (pipeline step 3) ----------------------------------------------------------

RUNNING = ShadowView("churn", "running", "6 h of 24 h, 2,100 of 10,000 samples")
PASSED = ShadowView("churn", "passed", "passed after 24 h and 12,400 samples")
CAUGHT = ShadowView(
    "churn", "failed", "found NaN scores", reasons=("3.1% of shadow answers were NaN",)
)
UNSURE = ShadowView("churn", "inconclusive", "72 h without enough samples (4,000 of 10,000)")
AFTER_WINDOW = NOW + timedelta(hours=4)


@pytest.mark.parametrize(
    "shadows, title_start, auto_merge",
    [
        ((), "Clear improvement: waiting for shadow", False),
        ((RUNNING,), "Clear improvement: waiting for shadow", False),
        ((UNSURE,), "Shadow inconclusive: an authorised /approve is required", False),
        ((PASSED,), "Clear improvement; review window over", True),
    ],
)
def test_a_required_shadow_must_pass_before_the_bot_merges_by_itself(
    shadows: tuple[ShadowView, ...], title_start: str, auto_merge: bool
) -> None:
    state = replace(BASE, shadow_required=True, shadows=shadows)
    decision = decide_gate(state, now=AFTER_WINDOW)
    assert decision.title.startswith(title_start)
    assert (decision.auto_merge_at is not None) is auto_merge
    assert decision.conclusion == (
        GateConclusion.SUCCESS if auto_merge else GateConclusion.ACTION_REQUIRED
    )


def test_shadow_progress_is_shown_while_it_runs() -> None:
    decision = decide_gate(replace(BASE, shadow_required=True, shadows=(RUNNING,)), now=NOW)
    assert "churn: shadow 6 h of 24 h, 2,100 of 10,000 samples" in decision.reasons


def test_a_shadow_that_caught_a_problem_fails_the_gate_even_when_approved() -> None:
    approved = replace(
        BASE,
        evaluations=(REVIEW,),
        approvals=(approval("lead"),),
        shadows=(CAUGHT,),
    )
    decision = decide_gate(approved, now=AFTER_WINDOW)
    assert decision.conclusion == GateConclusion.FAILURE
    assert decision.reasons == ["churn: 3.1% of shadow answers were NaN"]


def test_an_optional_shadow_does_not_hold_the_merge_but_its_finding_still_fails() -> None:
    assert decide_gate(replace(BASE, shadows=(RUNNING,)), now=AFTER_WINDOW).auto_merge_at
    assert (
        decide_gate(replace(BASE, shadows=(CAUGHT,)), now=AFTER_WINDOW).conclusion
        == GateConclusion.FAILURE
    )


def test_a_person_may_approve_while_a_required_shadow_still_runs() -> None:
    state = replace(
        BASE,
        evaluations=(REVIEW,),
        approvals=(approval("lead"),),
        shadow_required=True,
        shadows=(RUNNING,),
    )
    assert decide_gate(state, now=NOW).conclusion == GateConclusion.SUCCESS
