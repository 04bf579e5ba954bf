"""Tables. Every state change is a row before anything is posted anywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use the injected clock")
        return (
            value.astimezone(UTC)
            if dialect.name != "sqlite"
            else value.astimezone(UTC).replace(tzinfo=None)
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class Delivery(Base):
    """One acknowledged webhook delivery: the inbox the workers handle from."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(100), unique=True)
    event: Mapped[str] = mapped_column(String(100))
    action: Mapped[str | None] = mapped_column(String(100))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    repository: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(64))
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class CandidateState(StrEnum):
    REGISTERED = "registered"
    REJECTED = "rejected"


class Candidate(Base):
    """A model directory proposed by a PR at one head SHA."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("repository", "pr_number", "head_sha", "model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    installation_id: Mapped[int] = mapped_column(BigInteger)
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))
    base_sha: Mapped[str] = mapped_column(String(64))
    base_ref: Mapped[str] = mapped_column(String(300))
    model: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(30))
    conclusion: Mapped[str | None] = mapped_column(String(30))
    summary: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CheckRunRecord(Base):
    """The check run we own for (repo, sha, name): updated in place, never duplicated."""

    __tablename__ = "check_runs"
    __table_args__ = (UniqueConstraint("repository", "head_sha", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    head_sha: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    check_run_id: Mapped[int] = mapped_column(BigInteger)  # GitHub ids pass 2**31
    status: Mapped[str] = mapped_column(String(30))
    conclusion: Mapped[str | None] = mapped_column(String(30))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditEvent(Base):
    """Who did what, when, on which SHA and why: the trail `/status` and reports show."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    repository: Mapped[str] = mapped_column(String(300), index=True)
    pr_number: Mapped[int | None] = mapped_column(Integer)
    head_sha: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(300))
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON)


class EvaluationStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Evaluation(Base):
    """One evaluation run of a candidate at a head SHA; a newer push cancels older runs."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300), index=True)
    installation_id: Mapped[int] = mapped_column(BigInteger)
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))
    base_sha: Mapped[str] = mapped_column(String(64))
    base_ref: Mapped[str] = mapped_column(String(300))
    model: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision: Mapped[str | None] = mapped_column(String(40))
    reasons: Mapped[list[str] | None] = mapped_column(JSON)
    headline: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    baseline_tree: Mapped[str | None] = mapped_column(String(64))
    report_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)


class Report(Base):
    """An evaluation report (JSON), rendered on request at /reports/{id}; the id is unguessable."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(Integer, index=True)
    repository: Mapped[str] = mapped_column(String(300))
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    report_json: Mapped[str] = mapped_column(Text)


class Approval(Base):
    """An /approve, bound to the exact head SHA and evidence fingerprint it was given for."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300), index=True)
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    login: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class Block(Base):
    """A /block: survives pushes until /unblock by the blocker or an admin."""

    __tablename__ = "blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300), index=True)
    pr_number: Mapped[int] = mapped_column(Integer)
    login: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    head_sha: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(200))
    lifted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DeadlineStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"


class Deadline(Base):
    """Time as a row: a review window's end. A scheduler tick claims due rows atomically."""

    __tablename__ = "deadlines"
    __table_args__ = (UniqueConstraint("kind", "repository", "pr_number", "head_sha"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    repository: Mapped[str] = mapped_column(String(300))
    installation_id: Mapped[int] = mapped_column(BigInteger)
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str | None] = mapped_column(Text)


class MergeStatus(StrEnum):
    ATTEMPTING = "attempting"
    MERGED = "merged"
    REFUSED = "refused"
    STALE = "stale"


class MergeRecord(Base):
    """A merge the bot attempted: written before the PUT so a crash can be reconciled."""

    __tablename__ = "merges"
    __table_args__ = (UniqueConstraint("repository", "pr_number", "head_sha"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    merge_sha: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class BotComment(Base):
    """The one comment per PR we own (the report), with the hash of its current text."""

    __tablename__ = "bot_comments"
    __table_args__ = (UniqueConstraint("repository", "pr_number", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    pr_number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    comment_id: Mapped[int] = mapped_column(BigInteger)
    body_sha256: Mapped[str] = mapped_column(String(64))


class ServiceHeartbeat(Base):
    """A row /readyz rewrites: proof that the store accepts writes right now."""

    __tablename__ = "service_heartbeats"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class EffectStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class OutboxEffect(Base):
    """One intended write to GitHub or Slack, keyed so it happens once (see bot/runtime/outbox.py).

    The row is inserted before the request is sent: its UNIQUE key is the claim that keeps a
    second replica (or a redelivery) from sending it again, and `attempts` > 1 tells the next
    attempt to find out whether an earlier one took effect before writing.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    effect_key: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # For convergent effects: the store state the payload was rendered from (the newest audit
    # row id); a payload rendered from older state never replaces a newer one.
    version: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PrHead(Base):
    """A head of a PR: since when it was the head, and what the gate must know of its changes."""

    __tablename__ = "pr_heads"
    __table_args__ = (UniqueConstraint("repository", "pr_number", "head_sha"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime] = mapped_column(UtcDateTime())
    base_ref: Mapped[str] = mapped_column(String(300))
    production_branch: Mapped[str | None] = mapped_column(String(300))
    production_sha: Mapped[str | None] = mapped_column(String(64))
    paths_read: Mapped[bool] = mapped_column(Boolean, default=False)
    paths_problem: Mapped[str | None] = mapped_column(Text)
    models: Mapped[list[str] | None] = mapped_column(JSON)
    outside_paths: Mapped[list[str] | None] = mapped_column(JSON)
    outside_count: Mapped[int] = mapped_column(Integer, default=0)
    policy_changed: Mapped[bool] = mapped_column(Boolean, default=False)


class CommandReceipt(Base):
    """A command line already handled (redeliveries skip it); unique, so the lookup is indexed."""

    __tablename__ = "command_receipts"
    __table_args__ = (UniqueConstraint("repository", "pr_number", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    pr_number: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    answer: Mapped[str | None] = mapped_column(Text)  # repeated in the reply on redelivery


class ShadowStatus(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    STOPPED = "stopped"  # a newer head, a close or a merge ended it; its verdict no longer counts


class ShadowStage(Base):
    """A candidate receiving mirrored production traffic (pipeline step 3), one per model and
    head. Written before the route changes, so a crash between the two is finished, not lost."""

    __tablename__ = "shadow_stages"
    __table_args__ = (UniqueConstraint("repository", "pr_number", "head_sha", "model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    installation_id: Mapped[int] = mapped_column(BigInteger)
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))  # the candidate's version on the gateway
    sha256: Mapped[str | None] = mapped_column(String(64))  # its bundle, once published
    production_version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    routed: Mapped[bool] = mapped_column(Boolean, default=False)
    judged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    title: Mapped[str] = mapped_column(Text, default="")
    lines: Mapped[list[str] | None] = mapped_column(JSON)


class CanaryStatus(StrEnum):
    RUNNING = "running"  # taking a share of live traffic, step by step
    PAUSED = "paused"  # held by /pause or by missing data; a person resumes or rolls back
    PROMOTED = "promoted"  # production now; the deployment shows success
    ROLLED_BACK = "rolled_back"  # traffic back on the previous version
    STOPPED = "stopped"  # superseded by a newer rollout of the same model


class CanaryRollout(Base):
    """A merged model's rollout on the production gateway (pipeline step 5), one per model and
    merged head. Written before the route changes, so a crash between the two is finished,
    never lost or doubled; each outward effect (deployment status, check run, revert PR, page)
    is an outbox effect keyed on this row."""

    __tablename__ = "canary_rollouts"
    __table_args__ = (UniqueConstraint("repository", "pr_number", "head_sha", "model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    installation_id: Mapped[int] = mapped_column(BigInteger)
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))  # the PR's head: its check run lives there
    merge_sha: Mapped[str] = mapped_column(String(64))  # the deployment's ref
    base_ref: Mapped[str] = mapped_column(String(255))  # the branch a revert PR targets
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))  # the canary's version on the gateway
    sha256: Mapped[str | None] = mapped_column(String(64))
    previous_version: Mapped[str | None] = mapped_column(String(64))  # production before
    previous_sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), index=True)
    routed: Mapped[bool] = mapped_column(Boolean, default=False)
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_analysis_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)  # analyses out of tolerance
    data_since: Mapped[datetime | None] = mapped_column(UtcDateTime())  # last analysis with data
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    title: Mapped[str] = mapped_column(Text, default="")
    lines: Mapped[list[str] | None] = mapped_column(JSON)  # the last metric table, as shown
    reason: Mapped[str | None] = mapped_column(Text)  # why it paused or rolled back
    reference_scores: Mapped[list[float] | None] = mapped_column(JSON)  # shadow's histogram
    # A person's /rollback, /pause, /resume or /promote, carried out at the next visit.
    requested_action: Mapped[str | None] = mapped_column(String(20))
    requested_by: Mapped[str | None] = mapped_column(String(200))
    requested_reason: Mapped[str | None] = mapped_column(Text)
    ended_by: Mapped[str | None] = mapped_column(String(200))  # a person; None: Shipyard
    revert_pr_number: Mapped[int | None] = mapped_column(Integer)
    # The revert PR's head verified to restore the model exactly (the gate trusts only this).
    revert_head_sha: Mapped[str | None] = mapped_column(String(64))
    paged: Mapped[bool] = mapped_column(Boolean, default=False)  # an incident is open
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))  # resolves the page


class MonitorStatus(StrEnum):
    WATCHING = "watching"  # production serves this version: its windows are judged
    REPLACED = "replaced"  # a newer version of the model was promoted; its alerts resolved


class ProductionMonitor(Base):
    """A promoted model version watched in production (pipeline step 6), one per model and
    version. A window's judgement, the per-check alert state and `window_end` are written in
    one transaction, so a crash or a second replica re-judges no window and skips none; the
    alerts (issue, page, Slack) are outbox effects derived from this row."""

    __tablename__ = "production_monitors"
    __table_args__ = (UniqueConstraint("repository", "model", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    installation_id: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    pr_number: Mapped[int] = mapped_column(Integer)  # the PR that promoted it
    head_sha: Mapped[str] = mapped_column(String(64))
    merge_sha: Mapped[str] = mapped_column(String(64))
    base_ref: Mapped[str] = mapped_column(String(255))  # where the policy is read
    status: Mapped[str] = mapped_column(String(20), index=True)
    promoted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    window_end: Mapped[datetime] = mapped_column(UtcDateTime())  # the next window starts here
    # Per check (evaluators.judgement.monitoring.Check): the alert state and this episode's
    # windows, as `bot.monitoring.check_state.CheckState` writes them.
    checks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    volume_history: Mapped[list[int]] = mapped_column(JSON, default=list)
    baseline_profile: Mapped[str | None] = mapped_column(Text)  # scores of the first week
    shadow_profile: Mapped[str | None] = mapped_column(Text)  # scores of its shadow run
    last_checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_severity: Mapped[str | None] = mapped_column(String(20))
    last_report_id: Mapped[str | None] = mapped_column(String(64))
    lines: Mapped[list[str] | None] = mapped_column(JSON)  # the last window's findings
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # feature -> statistic -> value


class DriftCheck(Base):
    """One judged window of a monitored model: its drift report (JSON, rendered on request at
    /drift/{id}; the id is unguessable) and its score summary for the over-time chart."""

    __tablename__ = "drift_checks"
    __table_args__ = (UniqueConstraint("monitor_id", "window_end"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    monitor_id: Mapped[int] = mapped_column(Integer, index=True)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime())
    window_end: Mapped[datetime] = mapped_column(UtcDateTime())
    severity: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    report_json: Mapped[str] = mapped_column(Text)
    point: Mapped[dict[str, Any] | None] = mapped_column(JSON)
