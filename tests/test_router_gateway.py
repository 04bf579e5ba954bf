"""The gateway router: the routing table file gateways poll. Concurrent writers keep each
other's changes, every real change raises the revision, readers never see half a table, and
the same route twice changes nothing."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from bot.rollout.routers.gateway import GatewayRouter
from bot.rollout.routers.router import RouterError, Slot, configured_mirror_share
from gateway.routing import CanarySlot, Deployed, ModelRoute, Routing, ShadowSlot, load_routing

CHANGES_PER_WRITER = 60


def route(version: str, *, weight: float | None = None, share: float | None = None) -> ModelRoute:
    return ModelRoute(
        production=Deployed(version=version, sha256="a" * 64),
        canary=None
        if weight is None
        else CanarySlot(version="9.0.0", sha256="b" * 64, weight=weight),
        shadow=None
        if share is None
        else ShadowSlot(version="8.0.0", sha256="c" * 64, mirror_share=share),
    )


def write_many(table: str, model: str, start: Any) -> None:
    """One writer process: a run of real changes to its own model, begun with the others."""
    router = GatewayRouter(Path(table))
    start.wait(30)
    for i in range(CHANGES_PER_WRITER):
        router.apply(model, route(f"1.0.{i}", weight=0.05))


def test_two_writers_at_once_keep_both_changes_and_readers_never_see_half_a_table(
    tmp_path: Path,
) -> None:
    table = tmp_path / "routing.json"
    GatewayRouter(table).apply("seed", route("0.0.1"))
    seen: list[Routing] = []
    errors: list[Exception] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(load_routing(table))
            except Exception as exc:  # a half-written file would land here
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)  # both writers imported and ready: then they write at once
    writers = [
        spawn.Process(target=write_many, args=(str(table), m, start)) for m in ("churn", "fraud")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    done.set()
    reader.join(10)

    assert [w.exitcode for w in writers] == [0, 0]
    final = load_routing(table)
    last = route(f"1.0.{CHANGES_PER_WRITER - 1}", weight=0.05)
    assert final.models == {"seed": route("0.0.1"), "churn": last, "fraud": last}
    assert final.revision == 1 + 2 * CHANGES_PER_WRITER  # no change lost, none counted twice
    assert errors == []
    assert seen, "the reader never read"
    revisions = [r.revision for r in seen]
    assert revisions == sorted(revisions), "a reader saw the table go back in time"


def test_applying_the_same_route_twice_changes_nothing(tmp_path: Path) -> None:
    router = GatewayRouter(tmp_path / "routing.json")
    router.apply("churn", route("1.0.0", share=0.5))
    written = router.table.read_bytes(), router.table.stat().st_mtime_ns
    router.apply("churn", route("1.0.0", share=0.5))
    assert (router.table.read_bytes(), router.table.stat().st_mtime_ns) == written
    assert router.revision() == 1
    assert configured_mirror_share(router, "churn") == 0.5


def test_removing_a_slot_keeps_the_rest_and_is_a_no_op_the_second_time(tmp_path: Path) -> None:
    router = GatewayRouter(tmp_path / "routing.json")
    router.apply("churn", route("1.0.0", weight=0.25, share=1.0))
    router.remove_slot("churn", Slot.CANARY)
    assert router.current("churn") == route("1.0.0", share=1.0)
    router.remove_slot("churn", Slot.CANARY)
    router.remove_slot("absent", Slot.SHADOW)
    assert router.revision() == 2
    assert router.current("absent") is None
    assert configured_mirror_share(router, "absent") == 0.0


def test_a_table_nobody_can_read_is_an_error_never_an_empty_table(tmp_path: Path) -> None:
    table = tmp_path / "routing.json"
    table.write_text('{"revision": 3, "models": {"churn": ')
    router = GatewayRouter(table)
    with pytest.raises(RouterError, match="the routing table could not be read"):
        router.current("churn")
    with pytest.raises(RouterError, match="the routing table could not be read"):
        router.apply("churn", route("1.0.0"))
    assert table.read_text() == '{"revision": 3, "models": {"churn": '


def test_a_writer_that_cannot_get_the_lock_in_time_gives_a_clear_error(tmp_path: Path) -> None:
    import fcntl

    table = tmp_path / "routing.json"
    with open(tmp_path / "routing.json.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RouterError, match="another change to the routing is still in progress"):
            GatewayRouter(table, lock_timeout_s=0.2).apply("churn", route("1.0.0"))
    assert not table.exists()


def test_the_factory_builds_the_router_the_configuration_names(tmp_path: Path) -> None:
    from pydantic import TypeAdapter

    from bot.rollout.routers.factory import RouterConfig, make_router
    from bot.rollout.routers.nginx import NginxRouter

    configs = TypeAdapter(RouterConfig)
    gateway = make_router(
        configs.validate_python({"kind": "gateway", "table": str(tmp_path / "routing.json")})
    )
    gateway.apply("churn", route("1.0.0"))
    assert load_routing(tmp_path / "routing.json").models == {"churn": route("1.0.0")}
    nginx = make_router(
        configs.validate_python(
            {"kind": "nginx", "directory": str(tmp_path), "listen_port": 8080, "upstreams": {}}
        )
    )
    assert isinstance(nginx, NginxRouter)
