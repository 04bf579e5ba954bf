"""The webhook endpoint: verify, store, acknowledge — over real HTTP."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.base.local_server import LocalServer
from bot.base.settings import Settings
from bot.github.webhook_signature import sign
from bot.service.app import create_app
from bot.store.models import Delivery
from tests.bot_harness import post_delivery
from tests.conftest import WEBHOOK_SECRET

PING = {"zen": "Keep it logically awesome.", "hook_id": 1}


@pytest.fixture
def bot(make_settings: Callable[..., Settings], database_url: str) -> Iterator[LocalServer]:
    settings = make_settings(
        database_url=database_url, github_webhook_secret_previous="the-old-secret-before-rotation"
    )
    # Workers off: these tests look at the acknowledgement and the inbox alone.
    app = create_app(settings, run_workers=False)
    with LocalServer(app) as server:
        server.app = app  # type: ignore[attr-defined]
        yield server


def _stored(server: LocalServer) -> list[Delivery]:
    with server.app.state.ctx.store.session() as session:  # type: ignore[attr-defined]
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_a_signed_delivery_is_stored_and_acknowledged_with_202(bot: LocalServer) -> None:
    response = post_delivery(
        bot.url, secret=WEBHOOK_SECRET, event="ping", payload=PING, delivery_id="d-1"
    )
    assert response.status_code == 202
    assert response.json()["delivery"] == "d-1"
    rows = _stored(bot)
    assert [(r.delivery_id, r.event, r.status) for r in rows] == [("d-1", "ping", "pending")]


def test_the_previous_secret_is_accepted_during_rotation(bot: LocalServer) -> None:
    response = post_delivery(
        bot.url, secret="the-old-secret-before-rotation", event="ping", payload=PING
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 401),
        ({"X-Hub-Signature-256": ""}, 401),
        ({"X-Hub-Signature-256": "sha1=abc"}, 401),
    ],
    ids=[
        "a wrong signature is refused",
        "a missing signature is refused",
        "a SHA-1 signature is not enough",
    ],
)
def test_unsigned_or_badly_signed_deliveries_store_nothing(
    bot: LocalServer, headers: dict[str, str], status: int
) -> None:
    response = post_delivery(
        bot.url, secret=WEBHOOK_SECRET, event="ping", payload=PING, extra_headers=headers
    )
    assert response.status_code == status
    assert _stored(bot) == []


def test_signed_with_another_secret_is_refused(bot: LocalServer) -> None:
    response = post_delivery(bot.url, secret="somebody-elses-secret", event="ping", payload=PING)
    assert response.status_code == 401
    assert _stored(bot) == []


def test_malformed_json_is_a_400_and_stores_nothing(bot: LocalServer) -> None:
    response = post_delivery(bot.url, secret=WEBHOOK_SECRET, event="ping", payload=b"{not json")
    assert response.status_code == 400
    assert "JSON" in response.json()["message"]
    assert _stored(bot) == []


def test_a_json_array_is_a_400_and_stores_nothing(bot: LocalServer) -> None:
    response = post_delivery(bot.url, secret=WEBHOOK_SECRET, event="ping", payload=b"[1, 2]")
    assert response.status_code == 400
    assert _stored(bot) == []


def test_json_only_the_stdlib_parser_reads_is_still_stored_as_received(bot: LocalServer) -> None:
    # A lone surrogate escape: the fast parser refuses it, json.loads (as before) accepts it.
    body = b'{"zen": "half a pair \\ud800", "hook_id": 1}'
    response = post_delivery(bot.url, secret=WEBHOOK_SECRET, event="ping", payload=body)
    assert response.status_code == 202
    assert [r.payload for r in _stored(bot)] == [body.decode()]


def test_a_body_over_25_mib_is_refused_with_413_before_parsing(bot: LocalServer) -> None:
    body = b"{" + b" " * (25 * 1024 * 1024) + b"}"
    response = httpx.post(
        f"{bot.url}/github/webhooks",
        content=body,
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "big",
            "X-Hub-Signature-256": sign(WEBHOOK_SECRET.encode(), body),
        },
        timeout=60,
    )
    assert response.status_code == 413
    assert _stored(bot) == []


def test_a_chunked_body_over_25_mib_is_refused_too(bot: LocalServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(27):
            yield b" " * (1024 * 1024)

    response = httpx.post(
        f"{bot.url}/github/webhooks",
        content=chunks(),
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "chunked",
            "X-Hub-Signature-256": "sha256=" + "0" * 64,
        },
        timeout=60,
    )
    assert response.status_code == 413


def test_a_duplicate_delivery_is_acknowledged_and_stored_once(bot: LocalServer) -> None:
    first = post_delivery(
        bot.url, secret=WEBHOOK_SECRET, event="ping", payload=PING, delivery_id="same"
    )
    again = post_delivery(
        bot.url, secret=WEBHOOK_SECRET, event="ping", payload=PING, delivery_id="same"
    )
    assert (first.status_code, again.status_code) == (202, 202)
    assert "duplicate" in again.json()["message"]
    assert len(_stored(bot)) == 1


def test_healthz_is_liveness_and_readyz_proves_a_store_write(bot: LocalServer) -> None:
    response = httpx.get(f"{bot.url}/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    ready = httpx.get(f"{bot.url}/readyz", timeout=30)
    assert ready.json()["store"] == "writable"


def test_every_github_example_payload_is_acknowledged_without_a_5xx(bot: LocalServer) -> None:
    examples = json.loads(
        gzip.decompress(
            (Path(__file__).parents[1] / "fixtures/github/webhooks-examples.json.gz").read_bytes()
        )
    )
    sent = 0
    for entry in examples:
        for index, payload in enumerate(entry["examples"]):
            response = post_delivery(
                bot.url,
                secret=WEBHOOK_SECRET,
                event=entry["name"],
                payload=payload,
                delivery_id=f"{entry['name']}-{index}",
            )
            assert response.status_code == 202, (entry["name"], response.text)
            sent += 1
    assert sent > 300
    with bot.app.state.ctx.store.session() as session:  # type: ignore[attr-defined]
        assert session.scalar(select(func.count(Delivery.id))) == sent
