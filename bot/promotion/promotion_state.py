"""Read a PR's promotion record from the store into the pure gate's input."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.github.objects import PullRequest
from bot.promotion.gate_decision import (
    ApprovalView,
    BlockView,
    CanaryView,
    CandidateView,
    ChangeView,
    EvaluationView,
    HeadSince,
    PromotionState,
    ShadowView,
    head_seen_at,
)
from bot.store.models import (
    Approval,
    Block,
    CanaryRollout,
    CanaryStatus,
    Candidate,
    CandidateState,
    Deadline,
    DeadlineStatus,
    Evaluation,
    MergeRecord,
    MergeStatus,
    PrHead,
    ShadowStage,
    ShadowStatus,
)
from evaluators.policy import Policy, ReviewPolicy

REVIEW_WINDOW = "review_window"
SHADOW_CHECK = "shadow_check"  # the next look at a head's shadow stages (bot/rollout)
CANARY_CHECK = "canary_check"  # the next look at a merged head's canary rollouts (bot/rollout)
MONITOR_CHECK = "monitor_check"  # the next window of the models a head promoted (bot/monitoring)


def latest_evaluations(
    session: Session, *, repository: str, pr_number: int, head_sha: str
) -> dict[str, Evaluation]:
    """The newest evaluation per model at this head."""
    rows = session.scalars(
        select(Evaluation)
        .where(
            Evaluation.repository == repository,
            Evaluation.pr_number == pr_number,
            Evaluation.head_sha == head_sha,
        )
        .order_by(Evaluation.id)
    )
    return {row.model: row for row in rows}


def active_blocks(session: Session, *, repository: str, pr_number: int) -> list[Block]:
    return list(
        session.scalars(
            select(Block)
            .where(
                Block.repository == repository,
                Block.pr_number == pr_number,
                Block.lifted_at.is_(None),
            )
            .order_by(Block.id)
        )
    )


def head_record(
    session: Session, *, repository: str, pr_number: int, head_sha: str
) -> PrHead | None:
    return session.scalar(
        select(PrHead).where(
            PrHead.repository == repository,
            PrHead.pr_number == pr_number,
            PrHead.head_sha == head_sha,
        )
    )


def heads_of(session: Session, *, repository: str, pr_number: int) -> tuple[HeadSince, ...]:
    """Every head the PR had, with when it became the head, in the order the bot saw them."""
    rows = session.scalars(
        select(PrHead)
        .where(PrHead.repository == repository, PrHead.pr_number == pr_number)
        .order_by(PrHead.id)
    )
    return tuple(HeadSince(sha=r.head_sha, since=r.since) for r in rows)


def head_seen_by(
    session: Session, *, repository: str, pr_number: int, at: datetime | None
) -> str | None:
    """The head a person could have seen when acting at `at` (None: unknown, binds nothing)."""
    if at is None:
        return None
    return head_seen_at(heads_of(session, repository=repository, pr_number=pr_number), at)


def change_view(row: PrHead | None) -> ChangeView | None:
    if row is None:
        return None
    return ChangeView(
        read=row.paths_read,
        problem=row.paths_problem or "",
        models=tuple(row.models or ()),
        outside=tuple(row.outside_paths or ()),
        outside_count=row.outside_count,
        policy_changed=row.policy_changed,
    )


def state_of_pull(
    session: Session,
    *,
    repo: str,
    pull: PullRequest,
    policy: Policy,
) -> PromotionState:
    """The promotion state of the pull request's current head, as GitHub describes the PR now,
    under the base branch's policy (its review rules and whether shadow must pass)."""
    return load_state(
        session,
        repository=repo,
        pr_number=pull.number,
        head_sha=pull.head.sha,
        author=pull.user.login,
        review=policy.review,
        base_ref=pull.base.ref,
        shadow_required=policy.shadow.required,
    )


def shadow_views(
    session: Session, *, repository: str, pr_number: int, head_sha: str
) -> tuple[ShadowView, ...]:
    """Each model's shadow stage at this head; a stopped one no longer counts."""
    rows = session.scalars(
        select(ShadowStage)
        .where(
            ShadowStage.repository == repository,
            ShadowStage.pr_number == pr_number,
            ShadowStage.head_sha == head_sha,
            ShadowStage.status != ShadowStatus.STOPPED.value,
        )
        .order_by(ShadowStage.model)
    )
    return tuple(
        ShadowView(model=r.model, status=r.status, title=r.title, reasons=tuple(r.lines or ()))
        for r in rows
    )


def canary_views(
    session: Session, *, repository: str, pr_number: int, head_sha: str
) -> tuple[CanaryView, ...]:
    """Each model's rollout of this merged head."""
    rows = session.scalars(
        select(CanaryRollout)
        .where(
            CanaryRollout.repository == repository,
            CanaryRollout.pr_number == pr_number,
            CanaryRollout.head_sha == head_sha,
        )
        .order_by(CanaryRollout.model)
    )
    return tuple(
        CanaryView(
            model=r.model,
            status=r.status,
            title=r.title,
            lines=tuple(r.lines or ()),
            paged=r.paged,
        )
        for r in rows
    )


def load_state(
    session: Session,
    *,
    repository: str,
    pr_number: int,
    head_sha: str,
    author: str,
    review: ReviewPolicy,
    base_ref: str | None = None,
    shadow_required: bool = False,
) -> PromotionState:
    """`base_ref`: the PR's base as GitHub says now; otherwise the one recorded for the head."""
    head = head_record(session, repository=repository, pr_number=pr_number, head_sha=head_sha)
    candidates = session.scalars(
        select(Candidate)
        .where(
            Candidate.repository == repository,
            Candidate.pr_number == pr_number,
            Candidate.head_sha == head_sha,
        )
        .order_by(Candidate.model)
    )
    evaluations = latest_evaluations(
        session, repository=repository, pr_number=pr_number, head_sha=head_sha
    )
    approvals = session.scalars(
        select(Approval)
        .where(Approval.repository == repository, Approval.pr_number == pr_number)
        .order_by(Approval.id)
    )
    window = session.scalar(
        select(Deadline).where(
            Deadline.kind == REVIEW_WINDOW,
            Deadline.repository == repository,
            Deadline.pr_number == pr_number,
            Deadline.head_sha == head_sha,
            Deadline.status != DeadlineStatus.CANCELLED.value,
        )
    )
    merged = session.scalar(
        select(MergeRecord).where(
            MergeRecord.repository == repository,
            MergeRecord.pr_number == pr_number,
            MergeRecord.status == MergeStatus.MERGED.value,
        )
    )
    return PromotionState(
        repository=repository,
        pr_number=pr_number,
        head_sha=head_sha,
        author=author,
        candidates=tuple(
            CandidateView(
                model=c.model,
                registered=c.state == CandidateState.REGISTERED.value,
                title=(c.summary or "").splitlines()[0].strip("*") if c.summary else c.state,
            )
            for c in candidates
        ),
        evaluations=tuple(
            EvaluationView(
                model=e.model,
                status=e.status,
                decision=e.decision,
                fingerprint=e.fingerprint,
                headline=e.headline,
                base_ref=e.base_ref,
                reasons=tuple(e.reasons or ()),
            )
            for e in evaluations.values()
        ),
        approvals=tuple(
            ApprovalView(login=a.login, head_sha=a.head_sha, fingerprint=a.fingerprint, at=a.at)
            for a in approvals
        ),
        blocks=tuple(
            BlockView(login=b.login, reason=b.reason, at=b.at)
            for b in active_blocks(session, repository=repository, pr_number=pr_number)
        ),
        required_approvals=review.required_approvals,
        allow_author_approval=review.allow_author_approval,
        window_ends_at=window.due_at if window else None,
        merged=merged is not None,
        changes=change_view(head),
        base_ref=base_ref if base_ref is not None else (head.base_ref if head else ""),
        production_branch=head.production_branch if head else None,
        policy_approvers=tuple(review.policy_approvers),
        shadow_required=shadow_required,
        shadows=shadow_views(
            session, repository=repository, pr_number=pr_number, head_sha=head_sha
        ),
        canaries=canary_views(
            session, repository=repository, pr_number=pr_number, head_sha=head_sha
        ),
        restores=tuple(
            (
                r.model,
                f"puts back {r.previous_version}, which production runs again since the canary "
                f"of #{r.pr_number} was rolled back {r.reason or ''}".rstrip(),
            )
            for r in session.scalars(
                select(CanaryRollout).where(
                    CanaryRollout.repository == repository,
                    CanaryRollout.revert_pr_number == pr_number,
                    CanaryRollout.revert_head_sha == head_sha,
                    CanaryRollout.status == CanaryStatus.ROLLED_BACK.value,
                )
            )
        ),
    )
