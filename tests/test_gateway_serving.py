"""The gateway serves the registry's real models over the Open Inference Protocol v2: answers
equal the evaluators' own predictions, bodies are bounded, errors are short and fixed, and only
the bundle the routing table names (by sha256, ONNX or skops, never pickle) is ever loaded."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gateway.bundle import bundle_digest
from gateway.config import GatewayConfig
from gateway.routing import Deployed, ModelRoute, Routing, save_routing
from gateway.store import ArtifactStore, StoreError
from tests.gateway_harness import (
    benchmark_rows,
    evaluator_scores,
    fixture_dir,
    publish_fixtures,
    running_gateway,
    write_route,
)


@pytest.fixture
def world(tmp_path: Path) -> tuple[GatewayConfig, dict[str, str]]:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0")
    return GatewayConfig(store_url=str(store), routing_path=routing, max_rows=64), shas


def test_answers_equal_the_evaluators_predictions_as_a_matrix_and_as_named_columns(
    world: tuple[GatewayConfig, dict[str, str]],
) -> None:
    config, _ = world
    features, x = benchmark_rows(40)
    expected = evaluator_scores("production", x)
    with running_gateway(config) as gw:
        response = gw.infer(x, request_id="matrix-1")
        assert response.status_code == 200
        body = response.json()
        assert body["model_name"] == "churn" and body["model_version"] == "1.0.0"
        assert body["id"] == "matrix-1"
        (output,) = body["outputs"]
        assert output["name"] == "score" and output["shape"] == [40]
        np.testing.assert_allclose(output["data"], expected, rtol=0, atol=1e-6)
        assert response.headers["x-shipyard-variant"] == "production"
        assert response.headers["x-shipyard-version"] == "1.0.0"
        assert response.headers["x-request-id"] == "matrix-1"

        columns = {
            "inputs": [
                {"name": f, "shape": [5, 1], "datatype": "FP32", "data": x[:5, i].tolist()}
                for i, f in enumerate(features)
            ]
        }
        named = gw.client.post("/v2/models/churn/infer", json=columns)
        assert named.status_code == 200
        np.testing.assert_allclose(named.json()["outputs"][0]["data"], expected[:5], atol=1e-6)
        assert len(named.headers["x-request-id"]) == 32  # one was made for it
        odd = gw.infer(x[:1], request_id="not a token; <script>")
        assert odd.status_code == 200
        assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])  # replaced, not echoed


def test_a_skops_model_answers_as_the_evaluators_do(tmp_path: Path) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.2.0")
    _, x = benchmark_rows(8)
    with running_gateway(GatewayConfig(store_url=str(store), routing_path=routing)) as gw:
        response = gw.infer(x)
        assert response.status_code == 200
        scores = response.json()["outputs"][0]["data"]
        np.testing.assert_allclose(scores, evaluator_scores("candidate_skops", x), atol=1e-9)


def test_a_skops_model_is_scored_on_one_openmp_thread_per_serving_thread(tmp_path: Path) -> None:
    # HistGradientBoosting opens an OpenMP team on every core for each call; from the gateway's
    # parallel request threads that oversubscribed two cores and made single-row answers 10-20x
    # slower, so a skops canary was judged on the gateway's latency rather than the model's.
    import threading

    from threadpoolctl import threadpool_info

    from gateway.models import load_model

    store = tmp_path / "store"
    shas = publish_fixtures(store)
    deployed = Deployed(version="1.2.0", sha256=shas["1.2.0"])
    loaded = load_model(
        ArtifactStore(str(store)), model="churn", deployed=deployed, cache_dir=tmp_path / "cache"
    )
    _, x = benchmark_rows(4)
    seen: dict[str, object] = {}

    def serve() -> None:
        seen["scores"] = loaded.scores(x)
        seen["threads"] = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join()
    np.testing.assert_allclose(seen["scores"], evaluator_scores("candidate_skops", x), atol=1e-9)  # type: ignore[arg-type]
    assert seen["threads"] == {1}


def test_health_readiness_and_metadata_speak_the_protocol(
    world: tuple[GatewayConfig, dict[str, str]],
) -> None:
    config, _ = world
    with running_gateway(config) as gw:
        assert gw.client.get("/v2/health/live").json() == {"live": True}
        assert gw.client.get("/v2/health/ready").json() == {"ready": True}
        assert gw.client.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
        meta = gw.client.get("/v2/models/churn").json()
        assert meta["versions"] == ["1.0.0"] and meta["platform"] == "onnxruntime"
        assert meta["inputs"][0] == {"name": "features", "datatype": "FP32", "shape": [-1, 17]}
        assert meta["outputs"] == [{"name": "score", "datatype": "FP64", "shape": [-1]}]
        missing = gw.client.get("/v2/models/nope/ready")
        assert (missing.status_code, missing.json()) == (404, {"error": "unknown model"})


def test_bodies_are_bounded_and_errors_are_short_fixed_sentences(
    world: tuple[GatewayConfig, dict[str, str]],
) -> None:
    config, _ = world
    _, x = benchmark_rows(100)
    with running_gateway(config) as gw:
        huge = b'{"inputs": [' + b" " * (config.max_body_bytes + 10) + b"]}"
        cases = [
            (
                gw.client.post("/v2/models/churn/infer", content=huge),
                413,
                "request body is too large",
            ),
            (gw.infer(x), 413, "too many rows in one request"),  # 100 rows > max_rows 64
            (
                gw.client.post("/v2/models/churn/infer", content=b"{not json"),
                400,
                "request is not a valid inference request",
            ),
            (gw.infer(x[:2, :5]), 400, "inputs do not match the model's features"),
            (gw.infer(x[:2], name="secret"), 400, "inputs do not match the model's features"),
            (gw.infer(x[:2], model="Other_Model"), 404, "unknown model"),
            (gw.client.post("/v2/models/..%2f..%2fetc/infer", content=b"{}"), 404, "not found"),
            (gw.client.get("/nothing-here"), 404, "not found"),
        ]
        for response, status, text in cases:
            assert (response.status_code, response.json()) == (status, {"error": text})
        assert gw.client.get("/v2/health/ready").status_code == 200  # still serving
        # Inputs the answering version cannot read are its errors (a canary that needs a
        # feature the callers do not send fails its analysis instead of looking idle).
        errors = gw.metric("shipyard_gateway_requests_total", variant="production", outcome="error")
        assert errors == 2


def test_a_sha256_mismatch_refuses_to_load_and_readiness_says_not_ready(
    world: tuple[GatewayConfig, dict[str, str]],
) -> None:
    config, shas = world
    # The table names 1.0.0 with 1.1.0's digest: the bytes in the store are not what it names.
    route = ModelRoute(production=Deployed(version="1.0.0", sha256=shas["1.1.0"]))
    save_routing(config.routing_path, Routing(revision=2, models={"churn": route}))
    _, x = benchmark_rows(1)
    with running_gateway(config) as gw:
        assert gw.client.get("/v2/models/churn/ready").status_code == 503
        assert gw.client.get("/v2/models/churn/ready").json()["ready"] is False
        assert gw.client.get("/v2/health/ready").status_code == 503
        response = gw.infer(x)
        assert (response.status_code, response.json()) == (503, {"error": "model is not ready"})


def test_pickle_artifacts_are_refused_when_published_and_when_found_in_the_store(
    tmp_path: Path,
) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(fixture_dir("production"), pickled)
    (pickled / "weights" / "model.onnx").write_bytes(pickle.dumps({"looks": "harmless"}))
    store = ArtifactStore(str(tmp_path / "store"))
    with pytest.raises(StoreError, match="runs code"):
        store.publish(pickled, model="churn", version="9.9.9")

    # Someone swaps the weights in the store for a pickle and routes its true digest:
    # the digest matches, the safe loader still refuses, and the model is not ready.
    sha = store.publish(fixture_dir("production"), model="churn", version="1.0.0")
    stored = tmp_path / "store" / "models" / "churn" / "1.0.0"
    (stored / "weights" / "model.onnx").write_bytes(pickle.dumps({"looks": "harmless"}))
    tampered, _ = bundle_digest(stored)
    assert tampered != sha
    routing = tmp_path / "routing.json"
    route = ModelRoute(production=Deployed(version="1.0.0", sha256=tampered))
    save_routing(routing, Routing(models={"churn": route}))
    config = GatewayConfig(store_url=str(tmp_path / "store"), routing_path=routing)
    with running_gateway(config) as gw:
        assert gw.client.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": False}
    manifest = json.loads((stored / "manifest.json").read_text())
    assert manifest["sha256"] == sha  # the store still records what was published


def test_metrics_are_valid_prometheus_exposition_with_the_shared_names(
    world: tuple[GatewayConfig, dict[str, str]],
) -> None:
    config, _ = world
    _, x = benchmark_rows(3)
    with running_gateway(config) as gw:
        assert gw.infer(x).status_code == 200
        text = gw.client.get("/metrics").text
        assert gw.metric("shipyard_gateway_requests_total", variant="production", outcome="ok") == 1
        assert gw.metric("shipyard_gateway_score_count", version="1.0.0") == 3
        assert gw.metric("shipyard_gateway_latency_seconds_count", model="churn") == 1
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_a_missing_feature_is_a_null_in_and_a_non_finite_score_a_null_out(
    world: tuple[GatewayConfig, dict[str, str]],
) -> None:
    config, _ = world
    _, x = benchmark_rows(1)
    data: list[float | None] = x[0].tolist()
    data[0] = None
    body = {"inputs": [{"name": "features", "shape": [1, 17], "datatype": "FP32", "data": data}]}
    x_nan = x.copy()
    x_nan[0, 0] = np.nan
    expected = evaluator_scores("production", x_nan)[0]
    with running_gateway(config) as gw:
        response = gw.client.post("/v2/models/churn/infer", json=body)
        assert response.status_code == 200
        (score,) = response.json()["outputs"][0]["data"]  # strict JSON: never NaN
        assert score is None if np.isnan(expected) else abs(score - expected) < 1e-6
