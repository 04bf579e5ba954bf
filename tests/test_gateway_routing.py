"""Routing per model: the canary answers its weight's share of request ids (the same id always
gets the same variant), and a changed routing table is served without a restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bot.base.waiting import wait_until
from gateway import names
from gateway.bundle import bundle_digest
from gateway.config import GatewayConfig
from gateway.store import ArtifactStore
from tests.gateway_harness import (
    benchmark_rows,
    evaluator_scores,
    fixture_dir,
    publish_fixtures,
    running_gateway,
    write_route,
)


def test_the_canary_answers_its_weight_and_a_retry_gets_the_same_variant(tmp_path: Path) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0", canary="1.1.0", weight=0.3)
    _, x = benchmark_rows(1)
    expected = {
        "1.0.0": evaluator_scores("production", x)[0],
        "1.1.0": evaluator_scores("candidate_better", x)[0],
    }
    n = 400
    config = GatewayConfig(store_url=str(store), routing_path=routing, log_share=0.0)
    with running_gateway(config) as gw:
        # Per version, as the Open Inference Protocol asks: both answer, others do not.
        for version, code in (("1.0.0", 200), ("1.1.0", 200), ("1.2.0", 503)):
            ready = gw.client.get(f"/v2/models/churn/versions/{version}/ready")
            assert ready.status_code == code
            assert ready.json() == {"name": "churn", "version": version, "ready": code == 200}
        assert gw.client.get("/v2/models/nope/versions/1.0.0/ready").status_code == 404
        seen = {}
        for i in range(n):
            response = gw.infer(x, request_id=f"user-{i}")
            assert response.status_code == 200
            version = response.headers["x-shipyard-version"]
            variant = response.headers["x-shipyard-variant"]
            assert (variant == "canary") == (version == "1.1.0")
            assert abs(response.json()["outputs"][0]["data"][0] - expected[version]) < 1e-6
            seen[f"user-{i}"] = variant
        share = sum(v == "canary" for v in seen.values()) / n
        assert abs(share - 0.3) < 0.08, share  # ±3.5 binomial standard errors at n = 400
        for request_id in list(seen)[:20]:
            retry = gw.infer(x, request_id=request_id)
            assert retry.headers["x-shipyard-variant"] == seen[request_id]
        assert gw.metric("shipyard_gateway_requests_total", variant="canary") == sum(
            v == "canary" for v in seen.values()
        ) + sum(seen[r] == "canary" for r in list(seen)[:20])


def test_a_routing_change_is_served_without_a_restart(tmp_path: Path) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0")
    _, x = benchmark_rows(3)
    config = GatewayConfig(store_url=str(store), routing_path=routing, reload_every_s=0.1)
    with running_gateway(config) as gw:
        assert gw.infer(x).headers["x-shipyard-version"] == "1.0.0"
        write_route(routing, shas, production="1.1.0", revision=2)
        response = wait_until(
            lambda: (r := gw.infer(x)).headers["x-shipyard-version"] == "1.1.0" and r,
            timeout_s=15,
            what="the gateway to serve 1.1.0",
        )
        np.testing.assert_allclose(
            response.json()["outputs"][0]["data"],
            evaluator_scores("candidate_better", x),
            atol=1e-6,
        )
        # An invalid table (half written by hand) keeps the one in force...
        (routing.parent / "other.json").write_text("{ half a table")
        (routing.parent / "other.json").replace(routing)
        assert gw.infer(x).headers["x-shipyard-version"] == "1.1.0"
        # ...and the next valid table is picked up as usual.
        write_route(routing, shas, production="1.0.0", revision=3)
        wait_until(
            lambda: gw.infer(x).headers["x-shipyard-version"] == "1.0.0",
            timeout_s=15,
            what="the gateway to serve 1.0.0 again",
        )


def test_two_gateways_agree_on_variants_and_share_one_prediction_log(
    tmp_path: Path,
) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0", canary="1.1.0", weight=0.5)
    _, x = benchmark_rows(1)
    config = GatewayConfig(store_url=str(store), routing_path=routing)
    with running_gateway(config) as first, running_gateway(config) as second:
        for i in range(40):
            a = first.infer(x, request_id=f"lb-{i}")
            b = second.infer(x, request_id=f"lb-{i}")  # the balancer retried elsewhere
            assert a.headers["x-shipyard-version"] == b.headers["x-shipyard-version"]
        # Each process counts only what it answered.
        assert first.metric("shipyard_gateway_requests_total") == 40
        assert second.metric("shipyard_gateway_requests_total") == 40
    log = pd.read_parquet(store / names.PREDICTION_LOG_DIR)
    assert len(log) == 80
    assert log.groupby("request_id")["version"].nunique().max() == 1


def test_a_canary_that_cannot_load_gets_no_traffic(tmp_path: Path) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    wrong = {**shas, "1.1.0": shas["1.2.0"]}  # the canary's digest is not its bundle's
    write_route(routing, wrong, production="1.0.0", canary="1.1.0", weight=1.0)
    _, x = benchmark_rows(1)
    config = GatewayConfig(store_url=str(store), routing_path=routing, log_share=0.0)
    with running_gateway(config) as gw:
        assert gw.client.get("/v2/models/churn/ready").json()["ready"] is True
        version = gw.client.get("/v2/models/churn/versions/1.1.0/ready")
        assert (version.status_code, version.json()["ready"]) == (503, False)
        for i in range(10):
            response = gw.infer(x, request_id=f"c-{i}")
            assert response.status_code == 200
            assert response.headers["x-shipyard-variant"] == "production"


def test_a_version_published_after_the_table_names_it_is_served_once_published(
    tmp_path: Path,
) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    sha, _ = bundle_digest(fixture_dir("production"))
    write_route(routing, {"1.0.0": sha}, production="1.0.0")
    config = GatewayConfig(
        store_url=str(store), routing_path=routing, reload_every_s=0.1, retry_failed_s=0.2
    )
    _, x = benchmark_rows(1)
    with running_gateway(config) as gw:
        assert gw.client.get("/v2/models/churn/ready").json()["ready"] is False
        assert (
            ArtifactStore(str(store)).publish(
                fixture_dir("production"), model="churn", version="1.0.0"
            )
            == sha
        )
        wait_until(
            lambda: gw.client.get("/v2/models/churn/ready").json()["ready"],
            timeout_s=15,
            what="the newly published version to load",
        )
        assert gw.infer(x).status_code == 200
