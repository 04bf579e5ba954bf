"""Every stall is bounded: a killed bot's work is taken over within a minute of clock time,
transient failures retry, and what cannot be done is said in a sentence on the PR."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.store.models import Delivery, Evaluation, EvaluationStatus, Report
from tests.bot_harness import wait_until
from tests.policies import policy_text
from tests.world_fixtures import FIXTURES, shared_app_keypair

EVALUATION = "Shipyard / evaluation (churn)"
CANDIDATE = "Shipyard / candidate (churn)"
GATE = "Shipyard / promotion-gate"
LEAKS = ("Traceback", "Error:", "SELECT", "sqlalchemy", "psycopg", "/repos/", "GitHubError")


@pytest.fixture
def quick_world(database_url: str, tmp_path: Path) -> Iterator[RegistryWorld]:
    """A registry whose evaluations take seconds (a 2,000-row benchmark slice)."""
    bench = tmp_path / "bench.parquet"
    pd.read_parquet(FIXTURES / "benchmark/churn_benchmark.parquet").head(2000).to_parquet(bench)
    sha = hashlib.sha256(bench.read_bytes()).hexdigest()
    world = RegistryWorld(
        fixtures=FIXTURES,
        app_keypair=shared_app_keypair(),
        database_url=database_url,
        settings_overrides={
            "cache_dir": tmp_path / "cache",
            "shutdown_grace_s": 0.2,
            "benchmark_roots": [str(tmp_path)],  # where the slice lives
        },
    )
    world.create_registry(
        production=None,
        policy_text=policy_text(
            benchmark={"uri": str(bench), "sha256": sha},
            calibration={"thresholds": []},
            segments={"min_size": 100, "min_positives": 5},
        ),
    )
    try:
        yield world
        assert world.sandbox.violations == []
    finally:
        world.sandbox.on_request = None
        world.close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _store(world: RegistryWorld) -> Any:
    assert world.app is not None
    return world.app.state.ctx.store


def _evaluating(world: RegistryWorld) -> bool:
    with _store(world).session() as session:
        return (
            session.scalar(
                select(Evaluation.id).where(Evaluation.status == EvaluationStatus.IN_PROGRESS.value)
            )
            is not None
        )


def _completed(world: RegistryWorld, number: int, name: str) -> Any:
    run = world.check_run(number, name)
    return run if run is not None and run.status == "completed" else None


class Hang:
    """Freeze the first matching GitHub request (while `when()` holds) until released."""

    def __init__(self, world: RegistryWorld, fragment: str, when: Any = None) -> None:
        self.hit = threading.Event()
        self.release = threading.Event()
        self._fragment = fragment
        self._when = when or (lambda: True)
        world.sandbox.on_request = self

    def __call__(self, method: str, path: str) -> int | None:
        if method == "GET" and self._fragment in path and not self.hit.is_set() and self._when():
            self.hit.set()
            self.release.wait(120)
        return None


def test_a_bot_killed_mid_evaluation_is_replaced_within_a_minute_and_nothing_is_doubled(
    quick_world: RegistryWorld,
) -> None:
    world = quick_world
    world.start_bot()
    hang = Hang(world, "/git/blobs/", when=lambda: _evaluating(world))
    number = world.open_candidate_pr("candidate_better")
    wait_until(hang.hit.is_set, timeout_s=120, what="the evaluation to freeze mid-way")
    assert world.check_run(number, EVALUATION).status == "in_progress"
    dead = world.app
    assert dead is not None
    world.stop_bot()  # the first bot is gone; its worker is stuck inside a GitHub call
    began = world.clock.now()
    world.start_bot()
    world.clock.advance(timedelta(seconds=31))  # the dead bot's lease lapses
    run = wait_until(
        lambda: _completed(world, number, EVALUATION), timeout_s=120, what="the takeover"
    )
    assert run.conclusion in ("success", "action_required")
    assert world.clock.now() - began < timedelta(minutes=1)
    hang.release.set()  # the old worker wakes up: it lost its lease and must publish nothing
    wait_until(lambda: dead.state.evaluations.busy == 0, timeout_s=120, what="the old worker")
    dead.state.ctx.store.engine.dispose()
    assert _completed(world, number, EVALUATION).output == run.output
    with _store(world).session() as session:
        reports = list(session.scalars(select(Report.id)))
        evaluations = list(session.scalars(select(Evaluation)))
    assert len(reports) == 1
    assert [(e.status, e.attempts) for e in evaluations] == [("completed", 2)]


def test_a_bot_killed_mid_delivery_is_replaced_within_a_minute(
    quick_world: RegistryWorld,
) -> None:
    world = quick_world
    world.start_bot(evaluation_workers=0)
    hang = Hang(world, "/files")  # the registration handler listing the PR's files
    number = world.open_candidate_pr("candidate_better")
    wait_until(hang.hit.is_set, timeout_s=60, what="the handler to freeze")
    dead = world.app
    assert dead is not None
    world.stop_bot()
    world.start_bot(evaluation_workers=0)
    world.clock.advance(timedelta(seconds=31))
    run = wait_until(
        lambda: _completed(world, number, CANDIDATE), timeout_s=60, what="the takeover"
    )
    assert run.conclusion == "success"
    hang.release.set()
    wait_until(lambda: dead.state.workers.busy == 0, timeout_s=60, what="the old worker")
    dead.state.ctx.store.engine.dispose()

    def opened() -> list[tuple[str, int]]:
        with _store(world).session() as session:
            rows = session.scalars(select(Delivery).where(Delivery.event == "pull_request"))
            return [(d.status, d.attempts) for d in rows]

    assert wait_until(lambda: opened() == [("done", 2)] and opened(), what="done") == [("done", 2)]
    runs = [r for r in world.sandbox.check_runs_for(REGISTRY, world.head_sha(number))]
    assert [r.name for r in runs].count(CANDIDATE) == 1


def test_retest_takes_over_an_evaluation_whose_worker_vanished(
    quick_world: RegistryWorld,
) -> None:
    world = quick_world
    world.start_bot()
    hang = Hang(world, "/git/blobs/", when=lambda: _evaluating(world))
    number = world.open_candidate_pr("candidate_better")
    wait_until(hang.hit.is_set, timeout_s=120, what="the evaluation to freeze mid-way")
    dead = world.app
    assert dead is not None
    world.stop_bot()
    world.start_bot(evaluation_workers=0)  # a bot that only answers commands
    world.clock.advance(timedelta(seconds=31))
    world.sandbox.add_comment(REGISTRY, number, "/retest", "lead-ml")
    reply = wait_until(
        lambda: next(
            (c for c in world.sandbox.comments_on(REGISTRY, number) if c.body.startswith("@lead")),
            None,
        ),
        what="the answer to /retest",
    )
    assert "Re-running the evaluation of churn" in reply.body
    with _store(world).session() as session:
        statuses = [e.status for e in session.scalars(select(Evaluation))]
    assert statuses == ["queued"]
    hang.release.set()
    wait_until(lambda: dead.state.evaluations.busy == 0, timeout_s=120, what="the old worker")
    dead.state.ctx.store.engine.dispose()
    assert world.check_run(number, EVALUATION).status == "in_progress"  # it published nothing


def test_github_failing_for_forty_seconds_during_an_evaluation_is_retried(
    quick_world: RegistryWorld,
) -> None:
    world = quick_world
    world.start_bot()
    outage: dict[str, Any] = {}

    def flaky(method: str, path: str) -> int | None:
        if "/git/" not in path or not _evaluating(world):
            return None
        start = outage.setdefault("start", world.clock.now())
        return 502 if world.clock.now() - start < timedelta(seconds=40) else None

    world.sandbox.on_request = flaky
    number = world.open_candidate_pr("candidate_better")
    run = wait_until(lambda: _completed(world, number, EVALUATION), timeout_s=120, what="result")
    assert run.conclusion in ("success", "action_required"), run.output
    assert "start" in outage


def test_github_down_for_good_fails_with_a_sentence_not_an_exception(
    quick_world: RegistryWorld,
) -> None:
    world = quick_world
    world.start_bot()
    world.sandbox.on_request = lambda method, path: (
        502 if "/git/blobs/" in path and _evaluating(world) else None
    )
    number = world.open_candidate_pr("candidate_better")
    run = wait_until(lambda: _completed(world, number, EVALUATION), timeout_s=120, what="result")
    assert run.conclusion == "failure"
    summary = run.output["summary"]
    assert "GitHub did not answer reliably" in summary
    assert "/retest" in summary
    assert not [leak for leak in LEAKS if leak in summary]


def test_database_connections_cut_repeatedly_during_an_evaluation_are_survived(
    postgres_url: str, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    name = f"shipyard-{tmp_path.name[-20:]}"
    url = f"{postgres_url}&application_name={name}"
    admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    cuts: list[int] = []

    def cut(method: str, path: str) -> int | None:
        if "/git/" in path and len(cuts) < 4 and _evaluating(world):
            with admin.begin() as conn:
                killed = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name"
                    ),
                    {"name": name},
                ).scalar_one()
            cuts.append(int(killed))
        return None

    bench = tmp_path / "bench.parquet"
    pd.read_parquet(FIXTURES / "benchmark/churn_benchmark.parquet").head(2000).to_parquet(bench)
    world = RegistryWorld(
        fixtures=FIXTURES,
        app_keypair=shared_app_keypair(),
        database_url=url,
        settings_overrides={"benchmark_roots": [str(tmp_path)]},
    )
    try:
        world.create_registry(
            production=None,
            policy_text=policy_text(
                benchmark={"uri": str(bench), "sha256": _sha256(bench)},
                calibration={"thresholds": []},
                segments={"min_size": 100, "min_positives": 5},
            ),
        )
        world.start_bot(cache_dir=tmp_path / "cache")
        world.sandbox.on_request = cut
        number = world.open_candidate_pr("candidate_better")
        run = wait_until(
            lambda: _completed(world, number, EVALUATION), timeout_s=120, what="result"
        )
        assert run.conclusion in ("success", "action_required"), run.output
        assert len(cuts) == 4 and sum(cuts) > 0
    finally:
        world.sandbox.on_request = None
        world.close()
        admin.dispose()


def test_a_bot_killed_right_after_merging_recognises_the_merge_within_a_minute(
    quick_world: RegistryWorld,
) -> None:
    world = quick_world
    world.start_bot()
    number = world.open_candidate_pr("candidate_better")
    gate = wait_until(lambda: _completed(world, number, GATE), timeout_s=120, what="the gate")
    assert gate.conclusion == "action_required", gate.output
    world.sandbox.webhooks.url = None  # the merge's webhook is lost
    merged = threading.Event()
    release = threading.Event()

    def freeze_after_merge(method: str, path: str) -> int | None:
        if merged.is_set():
            release.wait(120)  # the bot is frozen right after GitHub merged
        elif method == "PUT" and path.endswith("/merge"):
            merged.set()
        return None

    world.sandbox.on_request = freeze_after_merge
    world.pass_time(timedelta(hours=25))
    wait_until(merged.is_set, timeout_s=60, what="the merge")
    dead = world.app
    assert dead is not None
    world.stop_bot()
    world.start_bot()
    world.clock.advance(timedelta(seconds=31))
    world.sandbox.on_request = None  # the new bot talks to GitHub; the old one stays frozen
    result = wait_until(lambda: _deadline_result(world), timeout_s=60, what="the recovery")
    assert result == "already merged"
    assert world.sandbox.pull(REGISTRY, number).merged
    release.set()  # the old thread wakes: it must not merge again nor rewrite the outcome
    puts = [r for r in world.sandbox.requests if r.method == "PUT" and r.path.endswith("/merge")]
    assert len(puts) == 1
    wait_until(lambda: not dead.state.scheduler.busy, timeout_s=60, what="the old scheduler")
    dead.state.ctx.store.engine.dispose()
    assert _deadline_result(world) == "already merged"
    puts = [r for r in world.sandbox.requests if r.method == "PUT" and r.path.endswith("/merge")]
    assert len(puts) == 1


def _deadline_result(world: RegistryWorld) -> str | None:
    from bot.store.models import Deadline

    with _store(world).session() as session:
        row = session.scalar(select(Deadline).where(Deadline.status == "done"))
        return None if row is None else row.result
