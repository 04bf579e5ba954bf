"""Group commit on the webhook path, over real HTTP: deliveries arriving together are stored in
one transaction, and each is acknowledged only once its own row is committed.

Bursts of concurrent signed deliveries make the writer batch them; the store is made to refuse
rows with a trigger (a fault in the database, not in the bot), so a failing batch is real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine, select, text

from bot.base.local_server import LocalServer
from bot.base.settings import Settings
from bot.service.app import create_app
from bot.store.models import Delivery
from tests.bot_harness import post_delivery
from tests.conftest import WEBHOOK_SECRET

PING = {"zen": "Design for failure.", "hook_id": 1}
BURST = 24


@pytest.fixture
def bot(make_settings: Callable[..., Settings], database_url: str) -> Iterator[LocalServer]:
    app = create_app(make_settings(database_url=database_url), run_workers=False)
    with LocalServer(app) as server:
        server.app = app  # type: ignore[attr-defined]
        yield server


def _engine(server: LocalServer) -> Engine:
    return server.app.state.ctx.store.engine  # type: ignore[attr-defined,no-any-return]


def _stored(server: LocalServer) -> list[str]:
    with _engine(server).connect() as conn:
        return sorted(conn.scalars(select(Delivery.delivery_id)))


def _refuse_rows_named(server: LocalServer, prefix: str) -> None:
    """A trigger that makes any INSERT of a delivery id starting with `prefix` fail."""
    engine = _engine(server)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_delivery() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.delivery_id LIKE '{prefix}%' THEN "
                    "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ "
                    "LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON deliveries "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_delivery()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON deliveries "
                    f"WHEN NEW.delivery_id LIKE '{prefix}%' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )


def _allow_rows_again(server: LocalServer) -> None:
    with _engine(server).begin() as conn:
        conn.execute(
            text("DROP TRIGGER refuse ON deliveries" if _is_pg(server) else "DROP TRIGGER refuse")
        )


def _is_pg(server: LocalServer) -> bool:
    return _engine(server).dialect.name == "postgresql"


def _burst(server: LocalServer, delivery_ids: list[str]) -> dict[str, httpx.Response]:
    """Send every delivery at once, each on its own connection."""

    def send(delivery_id: str) -> httpx.Response:
        return post_delivery(
            server.url, secret=WEBHOOK_SECRET, event="ping", payload=PING, delivery_id=delivery_id
        )

    with ThreadPoolExecutor(max_workers=len(delivery_ids)) as pool:
        return dict(zip(delivery_ids, pool.map(send, delivery_ids), strict=True))


def test_every_delivery_acknowledged_in_a_burst_is_stored(bot: LocalServer) -> None:
    ids = [f"burst-{i}" for i in range(BURST)]
    answers = _burst(bot, ids)
    assert {d: r.status_code for d, r in answers.items()} == dict.fromkeys(ids, 202)
    assert _stored(bot) == sorted(ids)


def test_a_store_that_refuses_the_batch_gets_503s_and_no_row(bot: LocalServer) -> None:
    _refuse_rows_named(bot, "")  # every row is refused: every batch, whatever its size, fails
    ids = [f"down-{i}" for i in range(BURST)]
    answers = _burst(bot, ids)
    assert {d: r.status_code for d, r in answers.items()} == dict.fromkeys(ids, 503)
    assert _stored(bot) == []
    _allow_rows_again(bot)  # GitHub redelivers what was not acknowledged
    again = _burst(bot, ids)
    assert {d: r.status_code for d, r in again.items()} == dict.fromkeys(ids, 202)
    assert _stored(bot) == sorted(ids)


def test_a_refused_row_fails_its_whole_batch_and_only_acknowledged_ones_are_stored(
    bot: LocalServer,
) -> None:
    _refuse_rows_named(bot, "poison")
    ids = [f"mixed-{i}" for i in range(BURST)] + ["poison-1"]
    answers = _burst(bot, ids)
    acknowledged = sorted(d for d, r in answers.items() if r.status_code == 202)
    refused = sorted(d for d, r in answers.items() if r.status_code == 503)
    assert sorted(acknowledged + refused) == sorted(ids)  # nothing but 202 or 503
    assert "poison-1" in refused
    # A 503 stored nothing (its batch was rolled back); every 202 is a committed row.
    assert _stored(bot) == acknowledged


def test_the_same_delivery_sent_twice_at_once_is_acknowledged_twice_and_stored_once(
    bot: LocalServer,
) -> None:
    ids = [f"twin-{i // 2}" for i in range(BURST)]  # each id twice, all in flight together
    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        answers = list(
            pool.map(
                lambda d: post_delivery(
                    bot.url, secret=WEBHOOK_SECRET, event="ping", payload=PING, delivery_id=d
                ),
                ids,
            )
        )
    assert [r.status_code for r in answers] == [202] * len(ids)
    messages = sorted(r.json()["message"] for r in answers)
    assert messages.count("accepted") == BURST // 2  # one first acceptance per id
    assert _stored(bot) == sorted(set(ids))
