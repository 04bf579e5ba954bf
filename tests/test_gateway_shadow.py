"""Mirroring to the shadow is off the request path: a shadow that is stuck does not slow or
fail production answers, and every mirrored request it cannot take is counted as dropped. The
prediction log holds production and shadow rows under the same request ids, whether the shadow
scores in a worker process (the default) or a thread; a worker process that dies is replaced."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.base.waiting import wait_until
from gateway import names
from gateway.config import MIRROR_MODES, GatewayConfig, MirrorMode
from gateway.mirror import MirrorJob
from gateway.store import MODELS_DIR as STORE_MODELS_DIR
from tests.gateway_harness import (
    FixedClock,
    benchmark_rows,
    evaluator_scores,
    publish_fixtures,
    running_gateway,
    write_route,
)


def _latencies_ms(gw: object, x: np.ndarray, prefix: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        response = gw.infer(x, request_id=f"{prefix}-{i}")  # type: ignore[attr-defined]
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        assert response.headers["x-shipyard-variant"] == "production"
    return out


def test_a_stuck_shadow_neither_slows_production_nor_goes_uncounted(tmp_path: Path) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0")
    release = threading.Event()
    entered = threading.Event()

    def stuck_shadow(job: MirrorJob) -> None:  # the shadow's worker hangs on every request
        entered.set()
        release.wait(timeout=60)

    config = GatewayConfig(
        store_url=str(store),
        routing_path=routing,
        mirror_queue=1,
        reload_every_s=0.1,
        log_share=0.0,
        before_shadow=stuck_shadow,
    )
    _, x = benchmark_rows(1)
    n = 60
    try:
        with running_gateway(config) as gw:
            without = _latencies_ms(gw, x, "plain", n)
            write_route(routing, shas, production="1.0.0", shadow="1.1.0", revision=2)
            # Requests until one is mirrored: the new table (with the shadow) is in force.
            wait_until(
                lambda: gw.infer(x).status_code == 200 and gw.metric(names.MIRRORED + "_total") > 0,
                timeout_s=15,
                what="the shadow route to be in force",
            )
            entered.wait(timeout=15)
            before = gw.metric(names.MIRRORED + "_total") + gw.metric(
                names.MIRROR_DROPPED + "_total"
            )
            stuck = _latencies_ms(gw, x, "mirrored", n)
            mirrored = gw.metric(names.MIRRORED + "_total")
            dropped = gw.metric(names.MIRROR_DROPPED + "_total", reason="queue_full")
            depth = gw.metric(names.MIRROR_QUEUE_DEPTH, model="churn")
            release.set()
    finally:
        release.set()
    # Every mirrored request is either taken by the (stuck) shadow or counted as dropped.
    assert mirrored + dropped - before == n
    assert dropped >= n - 2  # one held by the stuck worker, at most one waiting in the queue
    assert depth <= 1
    # Production answers as fast as without a shadow (generous: the machine is loaded).
    assert statistics.median(stuck) <= 2 * statistics.median(without) + 5, (without, stuck)
    assert max(stuck) < 2000


@pytest.mark.parametrize("mode", MIRROR_MODES)
def test_the_prediction_log_pairs_production_and_shadow_by_request_id(
    tmp_path: Path, mode: MirrorMode
) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0", shadow="1.1.0", mirror_share=1.0)
    clock = FixedClock(datetime(2026, 12, 5, 23, 59, 30, tzinfo=UTC))
    config = GatewayConfig(
        store_url=str(store), routing_path=routing, clock=clock, mirror_mode=mode
    )
    features, x = benchmark_rows(12)
    with running_gateway(config) as gw:
        for i in range(10):
            assert gw.infer(x[i : i + 1], request_id=f"req-{i}").status_code == 200
        assert gw.infer(x[10:12], request_id="pair").status_code == 200
        wait_until(
            lambda: gw.metric("shipyard_gateway_requests_total", variant="shadow") == 11,
            timeout_s=15,
            what="the shadow to answer every mirrored request",
        )
    # Stopping the gateway flushed the buffer: pandas reads the hive-partitioned log.
    log = pd.read_parquet(store / names.PREDICTION_LOG_DIR)
    assert set(names.LOG_COLUMNS) <= set(log.columns)
    assert set(log["model"].astype(str)) == {"churn"}
    assert set(log["day"].astype(str)) == {"2026-12-05"}
    production = log[log["variant"].astype(str) == "production"].set_index("request_id")
    shadow = log[log["variant"].astype(str) == "shadow"].set_index("request_id")
    ids = {f"req-{i}" for i in range(10)} | {"pair#0", "pair#1"}
    assert set(production.index) == ids == set(shadow.index)
    assert set(production["version"]) == {"1.0.0"} and set(shadow["version"]) == {"1.1.0"}
    assert (production["time"] == pd.Timestamp(clock.at)).all()
    assert (shadow["time"] == pd.Timestamp(clock.at)).all()  # the request's time, both sides
    assert production["error"].isna().all() and shadow["error"].isna().all()
    order = [f"req-{i}" for i in range(10)] + ["pair#0", "pair#1"]
    np.testing.assert_allclose(
        shadow.loc[order, "score"], evaluator_scores("candidate_better", x), atol=1e-6
    )
    np.testing.assert_allclose(
        production.loc[order, "score"], evaluator_scores("production", x), atol=1e-6
    )
    row = json.loads(production.loc["req-3", "features"])
    assert list(row) == features
    np.testing.assert_allclose(list(row.values()), x[3], rtol=1e-6)
    outputs = json.loads(production.loc["req-3", "outputs"])
    assert outputs == {"score": production.loc["req-3", "score"]}


def test_log_sampling_keeps_a_production_answer_and_its_mirror_together(tmp_path: Path) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0", shadow="1.1.0", mirror_share=1.0)
    config = GatewayConfig(store_url=str(store), routing_path=routing, log_share=0.25)
    _, x = benchmark_rows(1)
    n = 120
    with running_gateway(config) as gw:
        for i in range(n):
            gw.infer(x, request_id=f"s-{i}")
        wait_until(
            lambda: gw.metric("shipyard_gateway_requests_total", variant="shadow") == n,
            timeout_s=15,
            what="the shadow to answer",
        )
    log = pd.read_parquet(store / names.PREDICTION_LOG_DIR)
    by_variant = log.groupby(log["variant"].astype(str))["request_id"].apply(set)
    assert by_variant["production"] == by_variant["shadow"]
    assert 0.1 < len(by_variant["production"]) / n < 0.45


def _shadow_worker() -> multiprocessing.process.BaseProcess:
    """The gateway's shadow worker process (the gateway runs in this test's process)."""
    workers = [p for p in multiprocessing.active_children() if p.name == "shipyard-shadow"]
    assert len(workers) == 1, workers
    return workers[0]


def test_a_shadow_worker_that_dies_is_restarted_and_its_requests_counted(tmp_path: Path) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0", shadow="1.1.0", mirror_share=1.0)
    config = GatewayConfig(store_url=str(store), routing_path=routing, log_share=0.0)
    _, x = benchmark_rows(1)
    shadow_ok = {"variant": "shadow", "outcome": "ok"}
    with running_gateway(config) as gw:
        assert gw.infer(x, request_id="warm").status_code == 200
        wait_until(
            lambda: gw.metric(names.REQUESTS + "_total", **shadow_ok) == 1,
            timeout_s=30,
            what="the shadow worker to answer",
        )
        worker = _shadow_worker()
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGSTOP)  # requests pile up in flight in the frozen worker
        n = 20
        for i in range(n):
            assert gw.infer(x, request_id=f"frozen-{i}").status_code == 200
        wait_until(
            lambda: gw.metric(names.MIRROR_QUEUE_DEPTH, model="churn") == 0,
            timeout_s=15,
            what="the feeder to hand every request to the worker",
        )
        os.kill(worker.pid, signal.SIGKILL)
        crashed = {"reason": "shadow_crashed"}
        # Each of the n is answered or counted: none answered by a frozen worker, so all crashed
        # but one the feeder may still have been sending when the worker died.
        wait_until(
            lambda: (
                gw.metric(names.MIRROR_DROPPED + "_total", **crashed)
                + gw.metric(names.REQUESTS + "_total", **shadow_ok)
                == n + 1
            ),
            timeout_s=15,
            what="every mirrored request to be answered or counted as crashed",
        )
        assert gw.metric(names.MIRROR_DROPPED + "_total", **crashed) >= n - 1
        # A new worker takes over: later requests reach the shadow again.
        restarted = _shadow_worker()
        assert restarted.pid != worker.pid
        answered = gw.metric(names.REQUESTS + "_total", **shadow_ok)
        for i in range(5):
            assert gw.infer(x, request_id=f"after-{i}").status_code == 200
        wait_until(
            lambda: gw.metric(names.REQUESTS + "_total", **shadow_ok) == answered + 5,
            timeout_s=30,
            what="the restarted worker to answer",
        )
        assert gw.metric(names.MIRRORED + "_total") == 1 + n + 5


def test_a_routing_change_moves_the_worker_to_the_new_shadow_version(tmp_path: Path) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0", shadow="1.1.0", mirror_share=1.0)
    config = GatewayConfig(store_url=str(store), routing_path=routing, reload_every_s=0.1)
    _, x = benchmark_rows(1)

    def answered(version: str) -> float:
        labels = {"variant": "shadow", "version": version, "outcome": "ok"}
        return gw.metric(names.REQUESTS + "_total", **labels)

    with running_gateway(config) as gw:
        assert gw.infer(x, request_id="old").status_code == 200
        wait_until(lambda: answered("1.1.0") == 1, timeout_s=30, what="the first shadow")
        # The skops candidate: a different bundle (and format) the worker must fetch and verify.
        write_route(routing, shas, production="1.0.0", shadow="1.2.0", revision=2)
        wait_until(
            lambda: gw.infer(x).status_code == 200 and answered("1.2.0") > 0,
            timeout_s=30,
            what="the new shadow version to answer mirrored requests",
        )
    log = pd.read_parquet(store / names.PREDICTION_LOG_DIR)
    shadow = log[log["variant"].astype(str) == "shadow"]
    assert set(shadow["version"]) == {"1.1.0", "1.2.0"}
    assert shadow["error"].isna().all()
    new = shadow[shadow["version"] == "1.2.0"].iloc[0]
    np.testing.assert_allclose(new["score"], evaluator_scores("candidate_skops", x)[0], atol=1e-6)


def test_a_shadow_the_worker_cannot_load_is_counted_as_dropped_never_as_answered(
    tmp_path: Path,
) -> None:
    """The gateway process loaded the shadow; its worker process fetches its own copy. If the
    store's copy changed since (sha256 no longer matches), the worker must refuse it, and every
    mirrored request it was sent is a `shadow_not_loaded` drop."""
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0", shadow="1.1.0", mirror_share=1.0)
    release = threading.Event()

    def hold_the_first_batch(job: MirrorJob) -> None:  # nothing reaches the worker until then
        release.wait(timeout=60)

    config = GatewayConfig(
        store_url=str(store),
        routing_path=routing,
        log_share=0.0,
        before_shadow=hold_the_first_batch,
    )
    _, x = benchmark_rows(1)
    n = 10
    try:
        with running_gateway(config) as gw:
            for i in range(n):
                assert gw.infer(x, request_id=f"t-{i}").status_code == 200
            mirrored = gw.metric(names.MIRRORED + "_total")
            assert mirrored >= 1  # the gateway process holds the shadow (or soon did)
            weights = list((store / STORE_MODELS_DIR / "churn" / "1.1.0").rglob("*.onnx"))
            assert weights
            for path in weights:
                path.write_bytes(path.read_bytes() + b"tampered")
            release.set()
            not_loaded = {"reason": "shadow_not_loaded"}
            wait_until(
                # The mirrored ones by the worker; any before the gateway held the shadow, by it.
                lambda: gw.metric(names.MIRROR_DROPPED + "_total", **not_loaded) == n,
                timeout_s=30,
                what="every mirrored request to be counted as not loaded",
            )
            assert gw.metric(names.REQUESTS + "_total", variant="shadow") == 0
    finally:
        release.set()
