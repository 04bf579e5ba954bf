"""Run queued evaluations off the request path and publish what they find."""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from bot.base.observability import EVALUATION_RETRIES, EVALUATION_SECONDS, log_context
from bot.base.worker_pool import WorkerPool
from bot.github.api import InstallationClient
from bot.github.check_names import evaluation_check_name
from bot.github.objects import Repository
from bot.github.registry_reader import materialise, read_model_dir, read_policy
from bot.promotion import audit
from bot.promotion.check_runs import CheckOutput, publish
from bot.promotion.deadlines import arm_window
from bot.promotion.evaluation_queue import claim_next, is_cancelled, take_abandoned
from bot.promotion.failure_messages import describe_failure, transient_cause
from bot.promotion.pr_refresh import get_pull, refresh_pr
from bot.promotion.promotion_state import REVIEW_WINDOW, SHADOW_CHECK, latest_evaluations
from bot.runtime.context import BotContext
from bot.runtime.heartbeat import Lease, LeaseLost, lease_of
from bot.store.models import Evaluation, EvaluationStatus, Report
from evaluators.evaluate import run_evaluation
from evaluators.policy import Policy
from evaluators.rendering.render import (
    render_check_summary,
    render_check_title,
    render_json,
)
from evaluators.report import Decision, EvaluationReport, ModelIdentity

log = logging.getLogger(__name__)

RETRY_ATTEMPTS = 5  # one try and four retries, waiting 5, 10, 20, 40 s: about 75 s in all
RETRY_BASE_S = 5.0

_CONCLUSION = {
    Decision.AUTO_PROMOTE_ELIGIBLE: "success",
    Decision.NEEDS_REVIEW: "action_required",
    Decision.FAIL: "failure",
}


def evaluate_one(ctx: BotContext, job: Evaluation, lease: Lease) -> None:
    """Evaluate one candidate against production on the benchmark, then publish.

    Before each write the lease is checked: a worker whose run was taken over (it stalled
    past its lease, or `/retest` restarted it) stops without publishing anything.
    """
    client = ctx.github.installation(job.installation_id)
    repo = job.repository
    lease.check()
    _show(
        ctx,
        client,
        job,
        status="in_progress",
        output=CheckOutput(
            title=f"{job.model}: evaluating",
            summary="Scoring candidate and production on the benchmark.",
        ),
        external_id=f"evaluation:{job.model}",
    )
    policy = read_policy(client, repo, job.base_sha)
    repository = Repository(full_name=repo)  # LFS URL derives from the API host
    directory = f"{policy.models_root}/{job.model}"
    candidate = read_model_dir(client, repository, job.head_sha, directory)
    baseline = read_model_dir(client, repository, job.base_sha, directory)
    with tempfile.TemporaryDirectory(prefix="shipyard-eval-") as tmp:
        candidate_dir = materialise(candidate, Path(tmp) / "candidate")
        baseline_dir = materialise(baseline, Path(tmp) / "baseline") if baseline.exists else None
        report = run_evaluation(
            candidate_dir=candidate_dir,
            baseline_dir=baseline_dir,
            policy=policy,
            benchmark_base_dir=ctx.settings.benchmark_dir,
            cache_dir=ctx.settings.cache_dir,
            benchmark_roots=ctx.settings.allowed_benchmark_roots(),
            dask_scheduler=ctx.settings.dask_scheduler,
        )
    lease.check()
    if is_cancelled(ctx.store, job.id):
        _show(
            ctx,
            client,
            job,
            status="completed",
            conclusion="cancelled",
            output=CheckOutput(
                title=f"{job.model}: superseded by a newer push",
                summary="A newer commit was pushed; see its checks.",
            ),
        )
        return
    # One read of the PR serves both the report's identity (its author) and the refresh below.
    pull = get_pull(client, repo, job.pr_number)
    report = with_identity(report, commit_sha=job.head_sha, author=pull.user.login)
    report_id = secrets.token_urlsafe(24)
    details_url = f"{ctx.settings.public_url}/reports/{report_id}"
    _store_report(ctx, job, report, report_id, policy, lease.token)
    decision = report.verdict.decision if report.verdict else Decision.FAIL
    _show(
        ctx,
        client,
        job,
        status="completed",
        conclusion=_CONCLUSION[decision],
        output=CheckOutput(title=render_check_title(report), summary=render_check_summary(report)),
        external_id=f"evaluation:{job.model}",
        details_url=details_url,
    )
    if pull.head.sha == job.head_sha:
        refresh_pr(ctx, client=client, repo=repo, pull=pull, policy=policy)


def with_identity(report: EvaluationReport, *, commit_sha: str, author: str) -> EvaluationReport:
    """The report naming the commit evaluated and the PR's author, which only the bot knows."""
    identity = (report.identity or ModelIdentity()).model_copy(
        update={"commit_sha": commit_sha, "author": author}
    )
    return report.model_copy(update={"identity": identity})


def _store_report(
    ctx: BotContext,
    job: Evaluation,
    report: EvaluationReport,
    report_id: str,
    policy: Policy,
    token: str,
) -> None:
    now = ctx.clock.now()
    verdict = report.verdict
    with ctx.store.session() as session:
        row = session.get(Evaluation, job.id, with_for_update=ctx.store.is_postgres)
        assert row is not None
        if row.status == EvaluationStatus.CANCELLED.value:
            return
        if row.claim_token != token or row.status != EvaluationStatus.IN_PROGRESS.value:
            raise LeaseLost(f"evaluation {job.id} was taken over")
        session.add(
            Report(
                id=report_id,
                evaluation_id=job.id,
                repository=job.repository,
                pr_number=job.pr_number,
                head_sha=job.head_sha,
                model=job.model,
                created_at=now,
                report_json=render_json(report),
            )
        )
        _release(row, EvaluationStatus.COMPLETED, now)
        row.decision = verdict.decision.value if verdict else Decision.FAIL.value
        row.reasons = list(verdict.reasons) if verdict else [report.error or "no verdict"]
        row.fingerprint = report.fingerprint.digest if report.fingerprint else None
        row.baseline_tree = report.fingerprint.baseline_tree_sha256 if report.fingerprint else None
        row.headline = render_check_title(report)
        row.report_id = report_id
        _audit(
            session,
            job,
            at=now,
            kind="evaluation_completed",
            reason=f"{row.decision}: {row.headline}",
            detail={"fingerprint": row.fingerprint, "report": report_id},
        )
        session.flush()
        _maybe_open_window(ctx, session, job, policy)
        if ctx.settings.shadow_enabled and row.decision != Decision.FAIL.value:
            # Pipeline step 3 starts at the next scheduler tick (bot/rollout/shadow_stage.py).
            _arm(session, job, due_at=now, kind=SHADOW_CHECK)


def _arm(session: Session, job: Evaluation, *, due_at: datetime, kind: str) -> None:
    """The head's deadline of this kind, due at `due_at`."""
    arm_window(
        session,
        repository=job.repository,
        installation_id=job.installation_id,
        pr_number=job.pr_number,
        head_sha=job.head_sha,
        due_at=due_at,
        kind=kind,
    )


def _maybe_open_window(ctx: BotContext, session, job: Evaluation, policy: Policy) -> None:  # type: ignore[no-untyped-def]
    """When every model at this head is clearly better, the review window starts now."""
    evaluations = latest_evaluations(
        session, repository=job.repository, pr_number=job.pr_number, head_sha=job.head_sha
    )
    if not evaluations or any(
        e.status != EvaluationStatus.COMPLETED.value
        or e.decision != Decision.AUTO_PROMOTE_ELIGIBLE.value
        for e in evaluations.values()
    ):
        return
    now = ctx.clock.now()
    due = now + timedelta(hours=policy.review.window_hours)
    _arm(session, job, due_at=due, kind=REVIEW_WINDOW)
    audit.record(
        session,
        at=now,
        repository=job.repository,
        kind="review_window_opened",
        pr_number=job.pr_number,
        head_sha=job.head_sha,
        reason=f"auto-merge at {due:%Y-%m-%d %H:%M} UTC unless someone /blocks",
    )


def _show(
    ctx: BotContext,
    client: InstallationClient,
    job: Evaluation,
    *,
    status: str,
    output: CheckOutput,
    conclusion: str | None = None,
    external_id: str | None = None,
    details_url: str | None = None,
) -> None:
    """Set the job's evaluation check run on its head commit."""
    publish(
        client=client,
        store=ctx.store,
        now=ctx.clock.now(),
        repo=job.repository,
        head_sha=job.head_sha,
        name=evaluation_check_name(job.model),
        status=status,
        conclusion=conclusion,
        output=output,
        external_id=external_id,
        details_url=details_url,
    )


def _release(row: Evaluation, status: EvaluationStatus, now: datetime) -> None:
    """End the run: its final status, and the lease let go."""
    row.status = status.value
    row.finished_at = now
    row.lease_until = None
    row.claim_token = None


def _audit(
    session: Session,
    job: Evaluation,
    *,
    at: datetime,
    kind: str,
    reason: str,
    detail: dict[str, object] | None = None,
) -> None:
    audit.record(
        session,
        at=at,
        repository=job.repository,
        kind=kind,
        pr_number=job.pr_number,
        head_sha=job.head_sha,
        model=job.model,
        reason=reason,
        detail=detail,
    )


def _fail(
    ctx: BotContext, client: InstallationClient, job: Evaluation, message: str, token: str | None
) -> None:
    """Record and show a failure — only while this worker still owns the run."""
    now = ctx.clock.now()
    with ctx.store.session() as session:
        row = session.get(Evaluation, job.id, with_for_update=ctx.store.is_postgres)
        if row is None or row.status != EvaluationStatus.IN_PROGRESS.value:
            return
        if row.claim_token != token:
            return
        _release(row, EvaluationStatus.FAILED, now)
        row.error = message
        _audit(session, job, at=now, kind="evaluation_failed", reason=message)
    _show(
        ctx,
        client,
        job,
        status="completed",
        conclusion="failure",
        output=CheckOutput(
            title=f"{job.model}: evaluation failed",
            summary=message,  # a sentence from failure_messages: it already says what to do
        ),
    )
    pull = get_pull(client, job.repository, job.pr_number)
    if pull.head.sha == job.head_sha:
        refresh_pr(ctx, client=client, repo=job.repository, pull=pull)


def run_one(ctx: BotContext) -> bool:
    """Claim and run one evaluation; False when none was queued."""
    for abandoned in take_abandoned(ctx.store, now=ctx.clock.now()):
        _report_abandoned(ctx, abandoned)
    job = claim_next(ctx.store, now=ctx.clock.now(), lease=timedelta(seconds=ctx.settings.lease_s))
    if job is None:
        return False
    assert job.claim_token is not None
    with (
        log_context(pr_number=job.pr_number),
        lease_of(
            ctx,
            model=Evaluation,
            pk=job.id,
            token=job.claim_token,
            active_status=EvaluationStatus.IN_PROGRESS.value,
        ) as lease,
    ):
        _run_with_retries(ctx, job, lease)
    return True


def _run_with_retries(ctx: BotContext, job: Evaluation, lease: Lease) -> None:
    """Transient failures (GitHub 5xx/timeouts, database cuts) wait and retry, up to a bound."""
    attempt = 0
    while True:
        attempt += 1
        started = time.monotonic()
        try:
            evaluate_one(ctx, job, lease)
            EVALUATION_SECONDS.labels("completed").observe(time.monotonic() - started)
            return
        except LeaseLost:
            log.warning("evaluation %s was taken over; this worker stops", job.id)
            return
        except Exception as exc:
            EVALUATION_SECONDS.labels("error").observe(time.monotonic() - started)
            cause = transient_cause(exc)
            if cause is not None and attempt < RETRY_ATTEMPTS:
                EVALUATION_RETRIES.labels(cause).inc()
                delay = RETRY_BASE_S * 2 ** (attempt - 1)
                log.warning(
                    "evaluation %s attempt %d hit a transient %s failure (%s); retrying in %ss",
                    job.id,
                    attempt,
                    cause,
                    type(exc).__name__,
                    delay,
                )
                ctx.clock.sleep(delay)
                continue
            error_id = secrets.token_hex(4)
            log.error(
                "evaluation %s failed (error %s)",
                job.id,
                error_id,
                exc_info=exc,
                extra={"error_id": error_id},
            )
            message = describe_failure(exc, error_id=error_id, attempts=attempt)
            _fail_quietly(ctx, job, message, lease.token)
            return


def _report_abandoned(ctx: BotContext, job: Evaluation) -> None:
    message = (
        f"Shipyard stopped {job.attempts} times in the middle of this evaluation (for "
        "example, it ran out of memory), so it was not retried again. Comment `/retest` to "
        "try once more; if it fails the same way, tell the Shipyard operators."
    )
    log.error("evaluation %s abandoned after %d claims", job.id, job.attempts)
    _fail_quietly(ctx, job, message, job.claim_token)


def _fail_quietly(ctx: BotContext, job: Evaluation, message: str, token: str | None) -> None:
    for attempt in range(1, RETRY_ATTEMPTS + 1):
        try:
            _fail(ctx, ctx.github.installation(job.installation_id), job, message, token)
            return
        except Exception as exc:
            if transient_cause(exc) is None or attempt == RETRY_ATTEMPTS:
                log.error("could not report failed evaluation %s: %s", job.id, type(exc).__name__)
                return
            ctx.clock.sleep(RETRY_BASE_S * 2 ** (attempt - 1))


def evaluation_workers(ctx: BotContext, *, threads: int) -> WorkerPool:
    """A small pool of threads, each running one evaluation at a time."""
    return WorkerPool(name="eval", threads=threads, job=lambda: run_one(ctx))
