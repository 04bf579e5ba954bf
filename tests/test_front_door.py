"""The internet-facing front door over real HTTP: bodies are capped as they stream in, large
bodies share one memory budget, nothing is read forever, report links expire, no API map."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from bot.base.clock import ManualClock
from bot.base.local_server import LocalServer
from bot.base.settings import Settings
from bot.sandbox.slack.signing import signed_headers
from bot.service.app import create_app
from bot.store.models import AuditEvent, Delivery, DriftCheck, Report
from bot.store.slack_models import SlackRequest
from tests.bot_harness import post_delivery, wait_until
from tests.conftest import WEBHOOK_SECRET
from tests.report_factory import make_report

MIB = 1024 * 1024
SIGNING_SECRET = secrets.token_hex(16)


@dataclass
class Bot:
    server: LocalServer
    app: FastAPI
    clock: ManualClock

    @property
    def url(self) -> str:
        return self.server.url

    def rows(self, model: Any) -> list[Any]:
        with self.app.state.ctx.store.session() as session:
            return list(session.scalars(select(model)))


@pytest.fixture
def start_bot(
    make_settings: Callable[..., Settings], database_url: str
) -> Iterator[Callable[..., Bot]]:
    started: list[Bot] = []

    def start(*, run_workers: bool = False, **overrides: Any) -> Bot:
        settings = make_settings(
            database_url=database_url,
            slack_bot_token="xoxb-" + secrets.token_hex(12),
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url="http://127.0.0.1:9/api/",  # nothing there: the tests never need it
            scheduler_tick_s=0.05,
            **overrides,
        )
        clock = ManualClock()
        app = create_app(settings, clock=clock, run_workers=run_workers)
        bot = Bot(LocalServer(app).start(), app, clock)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.server.stop()
        bot.app.state.ctx.store.engine.dispose()


# -- a client that sends a body a piece at a time -------------------------------------------


class RawRequest:
    """An HTTP/1.1 request written by hand, so a test controls how much of the body is sent."""

    def __init__(self, url: str, path: str, headers: dict[str, str]) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_chunk(self, data: bytes) -> None:
        self.sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def status(self, *, timeout_s: float = 10) -> int | None:
        """The response's status code, or None when nothing came back within `timeout_s`."""
        self.sock.settimeout(timeout_s)
        try:
            head = self.sock.recv(4096)
        except TimeoutError:
            return None
        return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None

    def close(self) -> None:
        self.sock.close()


def test_a_2_mib_slack_body_is_refused_with_413_before_the_client_has_sent_it(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot()
    request = RawRequest(
        bot.url,
        "/slack/events",
        {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(2 * MIB)},
    )
    request.send(b"x" * 1024)  # 1 KiB of 2 MiB: the answer cannot wait for the rest
    assert request.status() == 413
    request.close()


@pytest.mark.parametrize(
    "path, cap",
    [("/slack/events", 64 * 1024), ("/github/webhooks", 25 * MIB)],
    ids=[
        "a chunked Slack body is refused once it passes 64 KiB",
        "a chunked webhook body is refused once it passes 25 MiB",
    ],
)
def test_a_chunked_body_without_content_length_is_capped_as_it_streams(
    start_bot: Callable[..., Bot], path: str, cap: int
) -> None:
    bot = start_bot()
    request = RawRequest(bot.url, path, {"Transfer-Encoding": "chunked"})
    piece = b" " * (64 * 1024)
    for _ in range(cap // len(piece) + 1):  # just past the cap, and never the final 0-chunk
        request.send_chunk(piece)
    assert request.status() == 413
    request.close()


def test_a_webhook_announcing_26_mib_is_refused_before_any_of_it_is_sent(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot()
    request = RawRequest(bot.url, "/github/webhooks", {"Content-Length": str(26 * MIB)})
    assert request.status() == 413
    request.close()


def _admitted_or_refused(bot: Bot, declared: int) -> int | None:
    """Announce a body of `declared` bytes and send none of it: 503 when there is no room."""
    probe = RawRequest(bot.url, "/github/webhooks", {"Content-Length": str(declared)})
    status = probe.status(timeout_s=0.5)
    probe.close()
    return status


def test_large_bodies_in_flight_share_one_budget_and_the_overflow_is_told_to_retry(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(max_body_bytes_in_flight=30 * MIB)
    slow = RawRequest(bot.url, "/github/webhooks", {"Content-Length": str(20 * MIB)})
    slow.send(b" " * MIB)  # a large body trickling in holds 20 MiB of the 30 MiB budget

    # A second 20 MiB body does not fit while the first is in flight.
    wait_until(lambda: _admitted_or_refused(bot, 20 * MIB) == 503, what="a 503 for the overflow")
    small = post_delivery(bot.url, secret=WEBHOOK_SECRET, event="ping", payload={"zen": "hi"})
    assert small.status_code == 202  # ordinary deliveries still fit beside it

    slow.close()  # the sender gives up; its share of the budget comes back
    body = b" " * (20 * MIB)

    def admitted() -> bool:
        response = httpx.post(
            f"{bot.url}/github/webhooks",
            content=body,
            headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
            timeout=30,
        )
        return response.status_code == 401  # read in full, then judged by its signature

    wait_until(admitted, what="a 20 MiB body to be read again")


# -- Slack's acknowledgement path -------------------------------------------------------------


def _signed_slash(bot: Bot, text: str) -> httpx.Response:
    body = urlencode(
        {
            "team_id": "T0TEAM",
            "user_id": "U0ALICE",
            "command": "/shipyard",
            "text": text,
            "response_url": "http://127.0.0.1:9/commands/hook",
            "trigger_id": secrets.token_hex(8),
        }
    ).encode()
    now = str(int(bot.clock.now().timestamp()))
    return httpx.post(
        f"{bot.url}/slack/events",
        content=body,
        headers=signed_headers(SIGNING_SECRET, timestamp=now, body=body),
        timeout=10,
    )


# -- retention --------------------------------------------------------------------------------


def test_handled_deliveries_and_slack_hashes_go_after_14_days_and_audit_rows_after_400(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(run_workers=True)
    store = bot.app.state.ctx.store
    response = post_delivery(bot.url, secret=WEBHOOK_SECRET, event="ping", payload={"zen": "z"})
    assert response.status_code == 202
    assert _signed_slash(bot, "help").status_code == 200
    with store.session() as session:
        session.add(
            AuditEvent(at=bot.clock.now(), repository="acme/r", actor="lead-ml", kind="command")
        )
        # A monitoring window's drift report (its link works for report_link_ttl_days: 90).
        session.add(
            DriftCheck(
                id="drift-report-1",
                monitor_id=1,
                window_start=bot.clock.now(),
                window_end=bot.clock.now(),
                severity="ok",
                created_at=bot.clock.now(),
                report_json="{}",
            )
        )
    wait_until(
        lambda: [d.status for d in bot.rows(Delivery)] == ["done"], what="the ping to be handled"
    )

    bot.clock.advance(timedelta(days=13, hours=23))
    bot.clock.advance(timedelta(hours=1, minutes=1))  # past 14 days; the tick prunes
    wait_until(lambda: bot.rows(Delivery) == [], what="the handled delivery to be pruned")
    assert bot.rows(SlackRequest) == []
    assert len(bot.rows(AuditEvent)) == 1  # who did what is kept longer
    assert len(bot.rows(DriftCheck)) == 1

    bot.clock.advance(timedelta(days=90 - 14))
    wait_until(lambda: bot.rows(DriftCheck) == [], what="the expired drift report to be pruned")
    assert len(bot.rows(AuditEvent)) == 1

    bot.clock.advance(timedelta(days=400 - 90))
    wait_until(lambda: bot.rows(AuditEvent) == [], what="the old audit row to be pruned")


def test_a_delivery_not_yet_handled_is_never_pruned(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(run_workers=False)  # acknowledges and stores; nothing handles it
    post_delivery(bot.url, secret=WEBHOOK_SECRET, event="ping", payload={"zen": "z"})
    from bot.runtime.retention import prune

    bot.clock.advance(timedelta(days=30))
    pruned = prune(bot.app.state.ctx, now=bot.clock.now())
    assert pruned.deliveries == 0
    assert [d.status for d in bot.rows(Delivery)] == ["pending"]


# -- report links and the API map -----------------------------------------------------------


def _store_report(bot: Bot) -> str:
    report_id = secrets.token_urlsafe(24)
    with bot.app.state.ctx.store.session() as session:
        session.add(
            Report(
                id=report_id,
                evaluation_id=1,
                repository="acme/model-registry",
                pr_number=1,
                head_sha="a" * 40,
                model="churn",
                created_at=bot.clock.now(),
                report_json=make_report().model_dump_json(),
            )
        )
    return report_id


def test_a_report_link_works_for_90_days_then_says_it_has_expired(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot()
    report_id = _store_report(bot)
    assert httpx.get(f"{bot.url}/reports/{report_id}/json").status_code == 200
    bot.clock.advance(timedelta(days=89))
    assert httpx.get(f"{bot.url}/reports/{report_id}", timeout=60).status_code == 200

    bot.clock.advance(timedelta(days=1, seconds=1))
    for path in (f"/reports/{report_id}", f"/reports/{report_id}/json"):
        expired = httpx.get(bot.url + path)
        assert expired.status_code == 410
        assert expired.headers["content-type"].startswith("text/plain")
        assert expired.text.startswith("This report link has expired.")
        assert "churn" not in expired.text


def test_the_report_link_lifetime_is_the_operators_choice(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(report_link_ttl_days=7)
    report_id = _store_report(bot)
    bot.clock.advance(timedelta(days=7, seconds=1))
    assert httpx.get(f"{bot.url}/reports/{report_id}/json").status_code == 410


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_the_api_map_is_not_served_unless_the_operator_turns_it_on(
    start_bot: Callable[..., Bot], path: str
) -> None:
    assert httpx.get(start_bot().url + path).status_code == 404
    assert httpx.get(start_bot(api_docs=True).url + path).status_code == 200


def test_deliveries_sent_at_once_are_each_acknowledged_stored_once_and_handled(
    start_bot: Callable[..., Bot],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bot = start_bot(run_workers=True)
    ids = [f"burst-{n}" for n in range(120)] + [f"burst-{n}" for n in range(0, 120, 7)]

    def send(delivery_id: str) -> int:
        payload = {"zen": delivery_id, "hook_id": 1}
        return post_delivery(
            bot.url, secret=WEBHOOK_SECRET, event="ping", payload=payload, delivery_id=delivery_id
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(send, ids))
    assert set(statuses) == {202}
    stored = bot.rows(Delivery)
    assert sorted(d.delivery_id for d in stored) == sorted(set(ids))
    wait_until(
        lambda: all(d.status == "done" for d in bot.rows(Delivery)), what="every delivery handled"
    )
