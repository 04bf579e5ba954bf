"""Every write to GitHub happens exactly once, even when GitHub fails around it.

The bot talks to the sandbox through tests/fault_proxy.py, which fails requests before or
after GitHub acted on them, or drops the answer. Effects are counted in the sandbox: what
a person looking at the pull request would see.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.sandbox.slack import SlackSandboxServer, SlackState
from tests.bot_harness import wait_until
from tests.fault_proxy import FaultProxy
from tests.policies import policy_text
from tests.world_fixtures import FIXTURES, shared_app_keypair

GATE = "Shipyard / promotion-gate"
REPORT_MARKER = "<!-- shipyard:pr-report -->"
COMMENTS = r"/issues/\d+/comments$"
REVIEWER = "lead-ml"
SLACK_CHANNEL = "C0PROMO"
CLIENT_TIMEOUT_S = 8.0  # short, so a held answer outlasts it quickly; long enough under load


def _world(database_url: str, tmp_path: Path, slack_channel: str | None = None) -> RegistryWorld:
    # A 2,000-row slice of the benchmark keeps evaluations quick; the pin is real.
    bench = tmp_path / "bench.parquet"
    pd.read_parquet(FIXTURES / "benchmark/churn_benchmark.parquet").head(2000).to_parquet(bench)
    sha = hashlib.sha256(bench.read_bytes()).hexdigest()
    world = RegistryWorld(
        fixtures=FIXTURES,
        app_keypair=shared_app_keypair(),
        database_url=database_url,
        settings_overrides={"benchmark_roots": [str(tmp_path)]},  # where the slice lives
    )
    world.create_registry(
        production=None,  # a new model: compared with the class prior, so the window opens
        policy_text=policy_text(
            benchmark={"uri": str(bench), "sha256": sha},
            calibration={"thresholds": []},
            segments={"min_size": 100, "min_positives": 5},
            **({"slack": {"channel": slack_channel}} if slack_channel else {}),
        ),
    )
    world.sandbox.set_permission(REGISTRY, "oncall", "write")
    return world


@pytest.fixture
def faulty(
    database_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RegistryWorld, FaultProxy]]:
    world = _world(database_url, tmp_path)
    proxy = FaultProxy(world.sandbox_server.url).start()
    try:
        world.start_bot(
            github_api_url=proxy.url,
            github_timeout_s=CLIENT_TIMEOUT_S,
            cache_dir=tmp_path_factory.getbasetemp() / "fault-prediction-cache",
        )
        yield world, proxy
        assert world.sandbox.violations == []
    finally:
        world.close()
        proxy.stop()


def report_comments(world: RegistryWorld, number: int) -> list[Any]:
    return [c for c in world.sandbox.comments_on(REGISTRY, number) if REPORT_MARKER in c.body]


def replies_to(world: RegistryWorld, number: int, author: str) -> list[Any]:
    return [
        c
        for c in world.sandbox.comments_on(REGISTRY, number)
        if c.body.startswith(f"@{author}") and c.user_login == "shipyard[bot]"
    ]


def gate(world: RegistryWorld, number: int) -> Any:
    return world.sandbox.check_run_named(REGISTRY, world.head_sha(number), GATE)


def settled(world: RegistryWorld, number: int, conclusion: str) -> Any:
    def done() -> Any:
        run = gate(world, number)
        return run if run is not None and run.conclusion == conclusion else None

    return wait_until(done, timeout_s=90, what=f"the gate to be {conclusion}")


def open_and_settle(world: RegistryWorld) -> int:
    number = world.open_candidate_pr("candidate_better")
    settled(world, number, "action_required")
    wait_until(lambda: report_comments(world, number), what="the report comment")
    return number


def open_docs_pr(world: RegistryWorld) -> int:
    """A PR that touches no model: commands work on it, nothing needs evaluating, and its gate
    waits for an authorised approve (a path outside the model directories)."""
    number = world.open_candidate_pr("docs", files={"docs/notes.md": b"Notes.\n"})
    settled(world, number, "action_required")
    return number


def quiet(world: RegistryWorld) -> None:
    """Let the bot finish, then let the outbox tick run once more with time moved on."""
    world.pass_time(timedelta(minutes=30))
    wait_until(world.idle, what="the bot to be idle")


def test_a_report_comment_created_behind_a_502_exists_once_and_is_current(
    faulty: tuple[RegistryWorld, FaultProxy],
) -> None:
    world, proxy = faulty
    proxy.fail_after("POST", COMMENTS, times=1)
    number = world.open_candidate_pr("candidate_better")
    title = settled(world, number, "action_required").output["title"]
    wait_until(
        lambda: any(title in c.body for c in report_comments(world, number)),
        what="the report comment to show the current gate",
    )
    quiet(world)
    assert proxy.faults_injected == 1
    comments = report_comments(world, number)
    assert len(comments) == 1
    assert title in comments[0].body


@pytest.mark.parametrize(
    "fault",
    ["fail_after", "drop_after", "hold_answer"],
    ids=[
        "a reply answered 502 after GitHub created it is not posted again",
        "a reply whose connection dropped after GitHub created it is not posted again",
        "a reply whose answer came after the client timeout is not posted again",
    ],
)
def test_a_command_reply_appears_once_when_the_answer_is_lost(
    faulty: tuple[RegistryWorld, FaultProxy], fault: str
) -> None:
    world, proxy = faulty
    number = open_docs_pr(world)
    # The bot's client waits CLIENT_TIMEOUT_S; the held answer comes well after that.
    proxy.add("POST", COMMENTS, fault, times=1, seconds=CLIENT_TIMEOUT_S + 3)
    world.sandbox.add_comment(REGISTRY, number, "/status", REVIEWER)
    wait_until(lambda: replies_to(world, number, REVIEWER), what="the reply")
    quiet(world)
    assert proxy.faults_injected == 1
    assert len(replies_to(world, number, REVIEWER)) == 1


def test_a_reply_github_refuses_for_a_long_time_is_posted_once_when_it_recovers(
    faulty: tuple[RegistryWorld, FaultProxy],
) -> None:
    world, proxy = faulty
    number = open_docs_pr(world)
    outage = proxy.fail("POST", COMMENTS, status=502, times=None)
    world.sandbox.add_comment(REGISTRY, number, "/block holiday freeze", "oncall")
    # The command takes effect at once; only its answer waits for GitHub.
    assert "holiday freeze" in settled(world, number, "failure").output["title"]
    world.pass_time(timedelta(minutes=2))
    wait_until(world.idle, what="the bot to be idle")
    assert replies_to(world, number, "oncall") == []
    assert proxy.faults_injected >= 2
    proxy.remove(outage)
    world.pass_time(timedelta(minutes=30))
    reply = wait_until(lambda: replies_to(world, number, "oncall"), what="the late reply")
    assert "Blocked: holiday freeze" in reply[0].body
    quiet(world)
    assert len(replies_to(world, number, "oncall")) == 1


def test_a_merge_answered_502_after_it_happened_is_recorded_as_merged(
    faulty: tuple[RegistryWorld, FaultProxy],
) -> None:
    world, proxy = faulty
    number = open_and_settle(world)
    proxy.fail_after("PUT", r"/merge$", times=1)
    world.pass_time(timedelta(hours=25))
    wait_until(lambda: world.sandbox.pull(REGISTRY, number).merged, what="the merge")
    assert settled(world, number, "success").output["title"] == "Merged by Shipyard"
    wait_until(
        lambda: "Merged by Shipyard" in report_comments(world, number)[0].body,
        what="the report to say merged",
    )
    quiet(world)
    puts = [r for r in world.sandbox.requests if r.method == "PUT" and r.path.endswith("/merge")]
    assert [r.status for r in puts if r.status < 300] == [200]
    body = report_comments(world, number)[0].body
    assert "merge_merged" in body and "merge_refused" not in body


def test_check_runs_created_behind_502s_exist_once_per_name(
    faulty: tuple[RegistryWorld, FaultProxy],
) -> None:
    world, proxy = faulty
    proxy.fail_after("POST", r"/check-runs$", times=3)
    number = open_and_settle(world)
    quiet(world)
    assert proxy.faults_injected == 3
    runs = world.sandbox.check_runs_for(REGISTRY, world.head_sha(number))
    names = Counter(r.name for r in runs)
    assert set(names.values()) == {1}, names
    assert len(names) == 3  # candidate, evaluation, gate


def test_a_deleted_model_directory_is_said_to_be_gone_in_the_report_comment(
    faulty: tuple[RegistryWorld, FaultProxy],
) -> None:
    world, _ = faulty
    number = open_and_settle(world)
    files = world.candidate_files("candidate_better")
    branch = world.sandbox.pull(REGISTRY, number).head_ref
    world.sandbox.push(REGISTRY, branch, dict.fromkeys(files), author="data-scientist")
    sha = world.head_sha(number)
    wait_until(
        lambda: any(
            f"`churn` is no longer part of this pull request at `{sha[:7]}`" in c.body
            for c in report_comments(world, number)
        ),
        what="the report comment to say the model is gone",
    )
    quiet(world)
    comments = report_comments(world, number)
    assert len(comments) == 1
    assert f"Shipyard promotion gate for `{sha[:7]}`" in comments[0].body


TRIALS = 10


@pytest.fixture
def two_replicas(
    postgres_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryWorld]:
    world = _world(postgres_url, tmp_path)
    try:
        cache = tmp_path_factory.getbasetemp() / "fault-prediction-cache"
        world.start_bot(cache_dir=cache, worker_threads=4)
        world.start_replica()
        yield world
        assert world.sandbox.violations == []
    finally:
        world.close()


def test_two_replicas_handling_two_blocks_create_one_report_comment(
    two_replicas: RegistryWorld,
) -> None:
    world = two_replicas
    # Without config.yaml the candidate is rejected at once: the PR has a candidate (so it
    # gets a report comment) and nothing to evaluate, which keeps ten trials quick.
    files = {
        path: data
        for path, data in world.candidate_files("candidate_better").items()
        if not path.endswith("config.yaml")
    }
    numbers = []
    for _ in range(TRIALS):
        number = world.open_candidate_pr("candidate_better", files=files)
        # Two people block at once; the inbox spreads the deliveries over both replicas,
        # racing the registration and the evaluation to create the report comment.
        world.sandbox.add_comment(REGISTRY, number, "/block first reason", "oncall")
        world.sandbox.add_comment(REGISTRY, number, "/block second reason", REVIEWER)
        numbers.append(number)
    for number in numbers:
        wait_until(
            lambda n=number: replies_to(world, n, "oncall") and replies_to(world, n, REVIEWER),
            timeout_s=120,
            what="both replies",
        )
    wait_until(world.idle, timeout_s=120, what="both replicas to settle")
    counts = {n: len(report_comments(world, n)) for n in numbers}
    assert set(counts.values()) == {1}, counts
    for number in numbers:
        assert len(replies_to(world, number, "oncall")) == 1
        assert len(replies_to(world, number, REVIEWER)) == 1
        body = report_comments(world, number)[0].body
        assert "first reason" in body and "second reason" in body


def test_a_slack_message_slack_refused_for_a_while_is_posted_once_when_it_recovers(
    database_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    world = _world(database_url, tmp_path, slack_channel=SLACK_CHANNEL)
    slack = SlackState(bot_token="xoxb-" + "0" * 24, team_id="T0TEAM", channels=(SLACK_CHANNEL,))
    server = SlackSandboxServer(slack).start()
    proxy = FaultProxy(server.api_url.removesuffix("/api/")).start()
    try:
        outage = proxy.fail("POST", r"/chat\.postMessage$", status=503, times=None)
        world.start_bot(
            cache_dir=tmp_path_factory.getbasetemp() / "fault-prediction-cache",
            slack_bot_token=slack.bot_token,
            slack_signing_secret="s" * 32,
            slack_api_url=proxy.url + "/api/",
        )
        number = world.open_candidate_pr("candidate_better")
        settled(world, number, "action_required")
        wait_until(world.idle, what="the bot to be idle")
        assert slack.channel_messages(SLACK_CHANNEL) == []
        assert proxy.faults_injected >= 1
        proxy.remove(outage)
        world.pass_time(timedelta(minutes=30))
        wait_until(lambda: slack.channel_messages(SLACK_CHANNEL), what="the Slack message")
        quiet(world)
        messages = slack.channel_messages(SLACK_CHANNEL)
        assert len(messages) == 1
        assert "Review window ends" in str(messages[0].blocks)
    finally:
        world.close()
        proxy.stop()
        server.stop()
