"""What operators and PR authors see when things go wrong: exhausted deliveries, token
failures, readiness, metrics and logs."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.github.api import GitHubApp, GitHubAuthError
from bot.github.objects import ContentFile
from bot.store.models import Delivery
from tests.bot_harness import wait_until
from tests.policies import policy_text

DELIVERY_CHECK = "Shipyard / event"


@pytest.fixture
def registry(world: RegistryWorld) -> Iterator[RegistryWorld]:
    world.create_registry(policy_text=policy_text())
    try:
        yield world
    finally:
        world.sandbox.on_request = None


def _delivery(world: RegistryWorld) -> Delivery | None:
    assert world.app is not None
    with world.app.state.ctx.store.session() as session:
        row = session.scalar(select(Delivery).where(Delivery.event == "pull_request"))
        if row is not None:
            session.expunge(row)
        return row


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_delivery_failing_every_attempt_is_shown_on_the_pr_logged_and_counted(
    registry: RegistryWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world = registry
    world.start_bot(evaluation_workers=0)
    assert world.bot is not None
    before = httpx.get(f"{world.bot.url}/metrics").text
    # Reading the repository (its default branch: where policy and production come from)
    # always fails, so the registration handler can never finish. (A failing file list no
    # longer makes the handler fail: it is shown as a failing gate; see test_gate_security_e2e.)
    repo_path = f"/repos/{REGISTRY}"
    world.sandbox.on_request = lambda method, path: (
        500 if method == "GET" and path.rstrip("/") == repo_path else None
    )
    caplog.set_level(logging.WARNING)
    number = world.open_candidate_pr("candidate_better")
    for attempt in range(1, 7):
        wait_until(
            lambda a=attempt: (
                (d := _delivery(world)) is not None and d.attempts == a and d.status != "processing"
            ),
            timeout_s=60,
            what=f"attempt {attempt} to end",
        )
        world.clock.advance(timedelta(seconds=30 * 2 ** (attempt - 1) + 1))
    run = wait_until(lambda: world.check_run(number, DELIVERY_CHECK), what="the failing check")
    assert run.conclusion == "failure"
    assert "could not process this `pull_request` event after 6 attempts" in run.output["summary"]
    row = _delivery(world)
    assert row is not None and (row.status, row.attempts) == ("failed", 6)
    world.clock.advance(timedelta(hours=1))  # never claimed again
    wait_until(world.idle, what="the inbox to settle")
    assert _delivery(world).attempts == 6  # type: ignore[union-attr]
    after = httpx.get(f"{world.bot.url}/metrics").text
    exhausted = "shipyard_deliveries_exhausted_total"
    attempts = "shipyard_delivery_attempts_total"
    assert _metric(after, exhausted, event="pull_request") == (
        _metric(before, exhausted, event="pull_request") + 1
    )
    assert _metric(after, attempts, event="pull_request") >= (
        _metric(before, attempts, event="pull_request") + 6
    )
    assert _metric(after, "shipyard_github_errors_total", status="500") > 0
    given_up = [r for r in caplog.records if "given up after 6 attempts" in r.getMessage()]
    assert given_up and given_up[0].delivery_id == row.delivery_id  # type: ignore[attr-defined]
    assert given_up[0].pr_number == number  # type: ignore[attr-defined]


def test_a_refused_installation_token_is_an_error_never_an_absent_file(
    registry: RegistryWorld,
) -> None:
    world = registry
    github = GitHubApp(
        app_id=world.sandbox.app.app_id,
        private_key=world._private_pem,
        api_url=world.sandbox_server.url,
        clock=world.clock,
        max_retries=0,
    )
    known = github.installation(world.installation_id)
    path = f"/repos/{REGISTRY}/contents/no-such-file.yml"
    assert known.get_optional(path, ContentFile) is None  # a 404 of the content: absent
    with pytest.raises(GitHubAuthError):
        github.installation(987654).get_optional(path, ContentFile)  # the token endpoint 404s


def test_readyz_is_503_while_the_store_cannot_write_and_healthz_stays_ok(
    registry: RegistryWorld,
) -> None:
    world = registry
    bot = world.start_bot()
    assert httpx.get(f"{bot.url}/readyz", timeout=30).status_code == 200
    release = threading.Event()
    locked = threading.Event()

    def hold_write_lock() -> None:
        if world.database_url.startswith("sqlite"):
            conn = sqlite3.connect(world.database_url.removeprefix("sqlite:///"), timeout=30)
            conn.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(60)
            conn.rollback()
            conn.close()
            return
        url = world.database_url.replace("postgresql://", "postgresql+psycopg://")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("LOCK TABLE service_heartbeats IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(60)
        engine.dispose()

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    try:
        assert locked.wait(30)
        ready = httpx.get(f"{bot.url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["store"] == "not writable"
        assert httpx.get(f"{bot.url}/healthz").status_code == 200
    finally:
        release.set()
        holder.join(30)
    assert httpx.get(f"{bot.url}/readyz", timeout=30).status_code == 200


def test_readyz_is_503_when_github_refuses_the_apps_key(registry: RegistryWorld) -> None:
    world = registry
    bot = world.start_bot()
    world.sandbox.on_request = lambda method, path: 401 if path.startswith("/app") else None
    ready = httpx.get(f"{bot.url}/readyz", timeout=30)
    assert (ready.status_code, ready.json()["github"]) == (503, "unreachable")


def test_metrics_after_a_delivery_count_it_and_github_calls_by_route(
    registry: RegistryWorld,
) -> None:
    world = registry
    bot = world.start_bot(evaluation_workers=0)
    before = httpx.get(f"{bot.url}/metrics").text
    number = world.open_candidate_pr("candidate_better")
    wait_until(lambda: world.check_run(number, "Shipyard / candidate (churn)"), what="the check")
    wait_until(
        lambda: (d := _delivery(world)) is not None and d.status == "done",
        what="the delivery to be handled",
    )
    after = httpx.get(f"{bot.url}/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    attempts = "shipyard_delivery_attempts_total"
    assert _metric(text, attempts, event="pull_request") == (
        _metric(before, attempts, event="pull_request") + 1
    )
    files = 'operation="GET /repos/{owner}/{repo}/pulls/{id}/files"'
    assert any(
        line.startswith("shipyard_github_calls_total{" + files) for line in text.splitlines()
    )
    assert re.search(r"^shipyard_inbox_depth [0-9.]+$", text, re.MULTILINE)
    assert re.search(r"^shipyard_inbox_oldest_age_seconds ", text, re.MULTILINE)
    assert "acme" not in text  # routes are templated: no repository or PR in label values
