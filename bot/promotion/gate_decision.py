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
class ChangeView:
    """What a head changes, recorded before any model directory is processed."""

    read: bool  # the complete list of changed paths was read
    problem: str = ""  # why it was not, when it was not
    models: tuple[str, ...] = ()  # touched model directories: each needs a candidate check
    outside: tuple[str, ...] = ()  # the first paths outside every model directory
    outside_count: int = 0
    policy_changed: bool = False


@dataclass(frozen=True)
class ShadowView:
    """A candidate's shadow stage (pipeline step 3) at this head, as the bot last judged it."""

    model: str
    status: str  # not_started | running | passed | failed | inconclusive
    title: str  # one line: progress or the finding, shown in the gate's reasons
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class CanaryView:
    """A merged model's production rollout (pipeline step 5), as the bot last left it."""

    model: str
    status: str  # running | paused | promoted | rolled_back | stopped
    title: str  # one line: the step and what the last analysis found
    lines: tuple[str, ...] = ()  # the last metric table, as markdown lines
    paged: bool = False


@dataclass(frozen=True)
class HeadSince:
    sha: str
    since: datetime


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
    # What the head changes and where the PR goes; None means not recorded yet (never success).
    changes: ChangeView | None = None
    base_ref: str = ""
    production_branch: str | None = None
    policy_approvers: tuple[str, ...] = ()
    # Shadow traffic: whether the policy requires it to pass before the bot merges by itself,
    # and each model's shadow stage at this head (absent: not started).
    shadow_required: bool = False
    shadows: tuple[ShadowView, ...] = ()
    # After merge: each model's canary rollout (shown, never part of the gate).
    canaries: tuple[CanaryView, ...] = ()
    # Shipyard's own revert PR after a rollback, verified at this head: model -> what it restores.
    restores: tuple[tuple[str, str], ...] = ()


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


NO_MODEL_EVIDENCE = hashlib.sha256(b"no model directory changed").hexdigest()
MAX_SHOWN_PATHS = 10


def pr_fingerprint(evaluations: tuple[EvaluationView, ...]) -> str | None:
    """What approvals bind to: every model's evidence fingerprint at this head."""
    if not evaluations or any(e.fingerprint is None for e in evaluations):
        return None
    # The base branch is part of what was approved: retargeting the PR starts over.
    joined = "\n".join(sorted(f"{e.model}@{e.base_ref}={e.fingerprint}" for e in evaluations))
    return hashlib.sha256(joined.encode()).hexdigest()


def _touched(state: PromotionState) -> tuple[str, ...]:
    if state.changes is not None:
        return state.changes.models
    return tuple(sorted({c.model for c in state.candidates}))


def approval_fingerprint(state: PromotionState) -> str | None:
    """The evidence an approval binds to now; None while a touched model lacks finished evidence.

    A PR touching no model has no evaluation: its approval binds to the head alone.
    """
    touched = _touched(state)
    if not touched:
        return NO_MODEL_EVIDENCE
    by_model = {e.model: e for e in state.evaluations}
    evidence = tuple(by_model[m] for m in touched if m in by_model)
    if len(evidence) != len(touched) or any(e.status != "completed" for e in evidence):
        return None
    return pr_fingerprint(evidence)


def head_seen_at(heads: tuple[HeadSince, ...], at: datetime) -> str | None:
    """The head a person saw when writing at `at`: the newest head that was already the head.

    Times are to the second and recorded no earlier than the change happened, so a doubt (a
    push in the same second) resolves to the older head: approving it is refused, never
    carried to a head nobody saw. The first head counts from its own second (nothing precedes it).
    """
    seen = None
    for index, head in enumerate(sorted(heads, key=lambda h: h.since)):  # stable on ties
        if head.since < at or (index == 0 and head.since == at):
            seen = head.sha
    return seen


def valid_approvers(state: PromotionState) -> tuple[str, ...]:
    """Distinct approvers whose approval names this exact head and evidence."""
    fingerprint = approval_fingerprint(state)
    logins = []
    for approval in state.approvals:
        if fingerprint is None:
            break
        if approval.head_sha != state.head_sha or approval.fingerprint != fingerprint:
            continue
        if approval.login == state.author and not state.allow_author_approval:
            continue
        if approval.login not in logins:
            logins.append(approval.login)
    return tuple(logins)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _quoted(text: str) -> str:
    """A path an author chose: one line, bounded, quoted. Plain text: every medium escapes it
    where it is shown (a code span here would be escaped again and show its backticks)."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    more = "…" if len(clean) > 120 else ""
    return f'"{clean[:120]}{more}"'


def outside_reasons(changes: ChangeView, policy_approvers: tuple[str, ...]) -> list[str]:
    """Why a person must approve: which paths lie outside the gated model directories."""
    if changes.outside_count == 0:
        return []
    shown = ", ".join(_quoted(p) for p in changes.outside[:MAX_SHOWN_PATHS])
    more = changes.outside_count - min(len(changes.outside), MAX_SHOWN_PATHS)
    lines = [
        "Changes outside the model directories need an authorised /approve: "
        + shown
        + (f" and {more} more" if more > 0 else "")
    ]
    if changes.policy_changed:
        who = (
            ", ".join(_quoted(a) for a in policy_approvers)
            if policy_approvers
            else "the approvers listed in review.approvers"
        )
        lines.append(
            f"It changes the promotion policy .shipyard.yml: only {who} may approve, "
            "and never its author"
        )
    return lines


def _shadow_unproven(
    state: PromotionState, touched: tuple[str, ...], shadows: dict[str, ShadowView]
) -> list[ShadowView]:
    """The models whose shadow must still pass before the bot may merge by itself."""
    if not state.shadow_required:
        return []
    return [
        shadows.get(m) or ShadowView(m, "not_started", "not started yet")
        for m in touched
        if m not in shadows or shadows[m].status != "passed"
    ]


def decide_gate(state: PromotionState, *, now: datetime) -> GateDecision:
    """success only when the PR may merge; otherwise why not, and until when."""
    if state.merged:
        return GateDecision("completed", GateConclusion.SUCCESS, "Merged by Shipyard")
    changes = state.changes
    if changes is None:
        return GateDecision(
            "in_progress",
            None,
            "Reading what this PR changes",
            reasons=["the changed files of this head have not been read yet"],
        )
    if state.production_branch is None or state.base_ref != state.production_branch:
        production = state.production_branch or "unknown"
        return GateDecision(
            "completed",
            GateConclusion.ACTION_REQUIRED,
            f"Not a promotion: this PR targets {_quoted(state.base_ref)}, "
            f"not the default branch {_quoted(production)}",
            reasons=[
                "Only pull requests into the default branch are promotions; nothing was "
                "evaluated and nothing this PR names was read"
            ],
        )
    if not changes.read:
        return GateDecision(
            "completed",
            GateConclusion.FAILURE,
            "The complete list of changed files could not be read",
            reasons=[changes.problem or "GitHub did not list every changed file"],
        )
    blocks = [f"Blocked by {b.login}: {b.reason}" for b in state.blocks]
    touched = changes.models
    outside = outside_reasons(changes, state.policy_approvers)
    if not touched and not outside and not blocks:
        return GateDecision("completed", GateConclusion.SUCCESS, "No file changed: nothing to gate")
    restores = dict(state.restores)
    if restores and not blocks and not outside and set(touched) <= set(restores):
        return GateDecision(
            "completed",
            GateConclusion.SUCCESS,
            "Restores what production runs after a rollback",
            reasons=[f"{m}: {restores[m]}" for m in touched],
        )
    candidates = {c.model: c for c in state.candidates}
    rejected = [
        f"{m}: {candidates[m].title}"
        for m in touched
        if m in candidates and not candidates[m].registered
    ]
    if rejected or blocks:
        return GateDecision(
            "completed",
            GateConclusion.FAILURE,
            blocks[0] if blocks else "A candidate failed registration",
            reasons=blocks + rejected,
        )
    unregistered = [m for m in touched if m not in candidates]
    if unregistered:
        return GateDecision(
            "in_progress",
            None,
            "Registering " + ", ".join(unregistered),
            reasons=[f"{m}: no candidate check yet" for m in unregistered],
        )

    by_model = {e.model: e for e in state.evaluations}
    waiting = [
        m for m in touched if m not in by_model or by_model[m].status in ("queued", "in_progress")
    ]
    if waiting:
        return GateDecision(
            "in_progress",
            None,
            "Evaluating " + ", ".join(waiting),
            reasons=[f"{m}: evaluation running" for m in waiting],
        )
    evaluations = [by_model[m] for m in touched]
    broken = [e for e in evaluations if e.status != "completed"]
    if broken:
        return GateDecision(
            "completed",
            GateConclusion.FAILURE,
            "Evaluation did not complete",
            reasons=[
                f"{e.model}: evaluation {e.status}; comment /retest to run it again" for e in broken
            ],
        )
    failed = [e for e in evaluations if e.decision == "fail"]
    if failed:
        reasons = [f"{e.model}: {r}" for e in failed for r in (e.reasons or ("verdict: fail",))]
        return GateDecision(
            "completed",
            GateConclusion.FAILURE,
            "The candidate is worse than production",
            reasons=reasons,
        )

    shadows = {s.model: s for s in state.shadows}
    caught = [shadows[m] for m in touched if m in shadows and shadows[m].status == "failed"]
    if caught:
        return GateDecision(
            "completed",
            GateConclusion.FAILURE,
            "Shadow traffic found a problem the benchmark missed",
            reasons=[f"{v.model}: {r}" for v in caught for r in (v.reasons or (v.title,))],
        )

    approvers = valid_approvers(state)
    # A person must look at anything outside the model directories, whatever the policy says.
    required = max(state.required_approvals, 1 if outside else 0)
    enough = len(approvers) >= required
    approval_line = (
        f"{len(approvers)} of {required} required approval"
        f"{'s' if required != 1 else ''} for {state.head_sha[:7]}"
        + (f" ({', '.join('@' + a for a in approvers)})" if approvers else "")
    )
    eligible = bool(evaluations) and all(e.decision == "auto_promote_eligible" for e in evaluations)
    if enough:
        return GateDecision(
            "completed",
            GateConclusion.SUCCESS,
            "Approved for promotion",
            reasons=[approval_line, *outside],
            valid_approvals=approvers,
        )
    unproven = _shadow_unproven(state, touched, shadows)
    if eligible and not outside and state.window_ends_at is not None and unproven:
        inconclusive = [v for v in unproven if v.status == "inconclusive"]
        title = (
            "Shadow inconclusive: an authorised /approve is required"
            if inconclusive
            else "Clear improvement: waiting for shadow traffic before merging automatically"
        )
        return GateDecision(
            "completed",
            GateConclusion.ACTION_REQUIRED,
            title,
            reasons=[*(f"{v.model}: shadow {v.title}" for v in unproven), approval_line],
            window_ends_at=state.window_ends_at,
            valid_approvals=approvers,
        )
    if eligible and not outside and state.window_ends_at is not None:
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
        for e in evaluations
        if e.decision != "auto_promote_eligible"
        for r in (e.reasons or ("needs review",))
    ]
    title = (
        "Needs review: files outside the model directories need an authorised /approve"
        if outside
        else "Needs review: an authorised /approve is required"
    )
    return GateDecision(
        "completed",
        GateConclusion.ACTION_REQUIRED,
        title,
        reasons=[approval_line, *outside, *needs],
        valid_approvals=approvers,
    )
