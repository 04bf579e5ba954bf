"""The promotion gate: may this PR merge now? A pure function over the stored record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from evaluators.escaping import markdown


class GateConclusion(StrEnum):
    SUCCESS = "success"
    ACTION_REQUIRED = "action_required"
    FAILURE = "failure"


@dataclass(frozen=True)
class CandidateView:
    model: str
    registered: bool
    title: str


@dataclass(frozen=True)
class EvaluationView:
    model: str
    status: str  # queued | in_progress | completed | cancelled | failed
    decision: str | None  # auto_promote_eligible | needs_review | fail
    fingerprint: str | None
    headline: str | None = None
    base_ref: str = ""
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApprovalView:
    login: str
    head_sha: str
    fingerprint: str
    at: datetime


@dataclass(frozen=True)
class BlockView:
    login: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class PromotionState:
    repository: str
    pr_number: int
    head_sha: str
    author: str
    candidates: tuple[CandidateView, ...]
    evaluations: tuple[EvaluationView, ...]
    approvals: tuple[ApprovalView, ...]
    blocks: tuple[BlockView, ...]
    required_approvals: int
    allow_author_approval: bool
    window_ends_at: datetime | None
    merged: bool = False


@dataclass(frozen=True)
class GateDecision:
    status: str  # "in_progress" while evidence is still being made, else "completed"
    conclusion: GateConclusion | None
    title: str
    reasons: list[str] = field(default_factory=list)
    window_ends_at: datetime | None = None
    auto_merge_at: datetime | None = None  # when the bot itself will merge, if it will
    valid_approvals: tuple[str, ...] = ()

    def summary(self) -> str:
        # Reasons and titles carry block reasons and file names: escaped for Markdown.
        if not self.reasons:
            return markdown(self.title, max_length=500)
        return "\n".join(f"- {markdown(r, max_length=500)}" for r in self.reasons)


def pr_fingerprint(evaluations: tuple[EvaluationView, ...]) -> str | None:
    """What approvals bind to: every model's evidence fingerprint at this head."""
    if not evaluations or any(e.fingerprint is None for e in evaluations):
        return None
    # The base branch is part of what was approved: retargeting the PR starts over.
    joined = "\n".join(sorted(f"{e.model}@{e.base_ref}={e.fingerprint}" for e in evaluations))
    return hashlib.sha256(joined.encode()).hexdigest()


def valid_approvers(state: PromotionState) -> tuple[str, ...]:
    """Distinct approvers whose approval names this exact head and evidence."""
    fingerprint = pr_fingerprint(state.evaluations)
    logins = []
    for approval in state.approvals:
        if approval.head_sha != state.head_sha or approval.fingerprint != fingerprint:
            continue
        if approval.login == state.author and not state.allow_author_approval:
            continue
        if approval.login not in logins:
            logins.append(approval.login)
    return tuple(logins)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def decide_gate(state: PromotionState, *, now: datetime) -> GateDecision:
    """success only when the PR may merge; otherwise why not, and until when."""
    if state.merged:
        return GateDecision("completed", GateConclusion.SUCCESS, "Merged by Shipyard")
    blocks = [f"Blocked by {b.login}: {b.reason}" for b in state.blocks]
    if not state.candidates and not blocks:
        return GateDecision(
            "completed", GateConclusion.SUCCESS, "No model directory changed: nothing to gate"
        )
    rejected = [f"{c.model}: {c.title}" for c in state.candidates if not c.registered]
    if rejected or blocks:
        return GateDecision(
            "completed",
            GateConclusion.FAILURE,
            blocks[0] if blocks else "A candidate failed registration",
            reasons=blocks + rejected,
        )

    by_model = {e.model: e for e in state.evaluations}
    waiting = [
        c.model
        for c in state.candidates
        if c.model not in by_model or by_model[c.model].status in ("queued", "in_progress")
    ]
    if waiting:
        return GateDecision(
            "in_progress",
            None,
            "Evaluating " + ", ".join(sorted(waiting)),
            reasons=[f"{m}: evaluation running" for m in sorted(waiting)],
        )
    broken = [e for e in state.evaluations if e.status != "completed"]
    if broken:
        return GateDecision(
            "completed",
            GateConclusion.FAILURE,
            "Evaluation did not complete",
            reasons=[
                f"{e.model}: evaluation {e.status}; comment /retest to run it again" for e in broken
            ],
        )
    failed = [e for e in state.evaluations if e.decision == "fail"]
    if failed:
        reasons = [f"{e.model}: {r}" for e in failed for r in (e.reasons or ("verdict: fail",))]
        return GateDecision(
            "completed",
            GateConclusion.FAILURE,
            "The candidate is worse than production",
            reasons=reasons,
        )

    approvers = valid_approvers(state)
    enough = len(approvers) >= state.required_approvals
    approval_line = (
        f"{len(approvers)} of {state.required_approvals} required approval"
        f"{'s' if state.required_approvals != 1 else ''} for {state.head_sha[:7]}"
        + (f" ({', '.join('@' + a for a in approvers)})" if approvers else "")
    )
    eligible = all(e.decision == "auto_promote_eligible" for e in state.evaluations)
    if enough:
        return GateDecision(
            "completed",
            GateConclusion.SUCCESS,
            "Approved for promotion",
            reasons=[approval_line],
            valid_approvals=approvers,
        )
    if eligible and state.window_ends_at is not None:
        if now >= state.window_ends_at:
            return GateDecision(
                "completed",
                GateConclusion.SUCCESS,
                "Clear improvement; review window over without objection",
                reasons=[f"Review window ended {_when(state.window_ends_at)}"],
                window_ends_at=state.window_ends_at,
                auto_merge_at=state.window_ends_at,
            )
        return GateDecision(
            "completed",
            GateConclusion.ACTION_REQUIRED,
            f"Clear improvement: merges automatically at {_when(state.window_ends_at)} "
            "unless someone comments /block",
            reasons=[f"Review window ends {_when(state.window_ends_at)}", approval_line],
            window_ends_at=state.window_ends_at,
            auto_merge_at=state.window_ends_at,
            valid_approvals=approvers,
        )
    needs = [
        f"{e.model}: {r}"
        for e in state.evaluations
        if e.decision != "auto_promote_eligible"
        for r in (e.reasons or ("needs review",))
    ]
    return GateDecision(
        "completed",
        GateConclusion.ACTION_REQUIRED,
        "Needs review: an authorised /approve is required",
        reasons=[approval_line, *needs],
        valid_approvals=approvers,
    )
