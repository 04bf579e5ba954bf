"""Intake and handling in separate processes: an intake-only `serve` stores, `work` handles."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from bot.base.local_server import LocalServer
from bot.cli.registry_world import RegistryWorld
from bot.service.app import create_app
from bot.store.models import Delivery
from tests.bot_harness import wait_until

CHECK = "Shipyard / candidate (churn)"


@pytest.fixture
def split(world: RegistryWorld) -> Iterator[tuple[RegistryWorld, LocalServer]]:
    world.create_registry()
    # GitHub delivers to an intake-only bot: it stores and acknowledges, and handles nothing.
    world.start_bot(run_workers=False, evaluation_workers=0)
    app = create_app(world.settings, clock=world.clock, intake=False, run_workers=True)
    worker = LocalServer(app)
    try:
        yield world, worker
    finally:
        if worker.started:
            worker.stop()


def test_a_delivery_stored_by_intake_is_handled_by_the_work_process(
    split: tuple[RegistryWorld, LocalServer],
) -> None:
    world, worker = split
    number = world.open_candidate_pr("candidate_better")
    assert world.app is not None
    store = world.app.state.ctx.store

    def stored_pending() -> bool:
        with store.session() as session:
            return bool(session.scalars(select(Delivery.status)).all())

    wait_until(stored_pending, what="the delivery to be stored by intake")
    assert world.check_run(number, CHECK) is None  # the intake process handles nothing

    worker.start()
    run = wait_until(
        lambda: (r := world.check_run(number, CHECK)) and r.status == "completed" and r,
        what="the work process to handle the delivery",
    )
    assert run.conclusion == "success"

    def statuses() -> set[str]:
        with store.session() as session:
            return set(session.scalars(select(Delivery.status)).all())

    wait_until(lambda: statuses() == {"done"}, what="the work process to finish the delivery")

    # `work` serves health and metrics only: no webhook endpoint, no report pages.
    assert httpx.get(f"{worker.url}/healthz").status_code == 200
    assert httpx.get(f"{worker.url}/metrics").status_code == 200
    assert httpx.post(f"{worker.url}/github/webhooks", content=b"{}").status_code in (404, 405)
