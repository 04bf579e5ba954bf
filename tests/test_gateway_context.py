"""Request context (`parameters.shipyard_context`): columns a caller sends beside the model's
inputs, never fed to the model but logged in each row's features JSON for production and the
shadow alike, so shadow can count its required segments from them and monitoring does not take
them for columns the model gained. Bounded: anything but small scalars is a 400."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest

from bot.base.waiting import wait_until
from bot.monitoring.window_reader import read_since, window_of
from bot.rollout.metrics.prediction_log import read_prediction_log
from evaluators.policy import parse_policy
from evaluators.statistics.data_quality import schema_changes
from evaluators.statistics.drift import build_profile
from evaluators.statistics.logged_features import (
    CONTEXT_MARKER,
    logged_context,
    logged_schema,
    segment_values,
)
from evaluators.statistics.monitoring_window import measure_window
from evaluators.statistics.shadow_analysis import analyse_shadow
from evaluators.statistics.shadow_evidence import NoData
from gateway import names, protocol
from gateway.config import MIRROR_MODES, GatewayConfig, MirrorMode
from gateway.predlog import LogEntry, PredictionLog
from gateway.store import ArtifactStore
from tests.gateway_harness import (
    BENCHMARK,
    REGISTRY,
    FixedClock,
    benchmark_rows,
    publish_fixtures,
    running_gateway,
    write_route,
)

SEGMENTS = ["entity_type", "industry", "region"]
AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _segments(features: pd.Series, columns: list[str]) -> pd.DataFrame:  # type: ignore[type-arg]
    """segment_values with absent values as None (pandas may show them as NaN)."""
    found = segment_values(features, columns).astype(object)
    return found.where(found.notna(), None)


def test_the_evaluators_know_the_gateways_context_name() -> None:
    assert CONTEXT_MARKER == protocol.CONTEXT_PARAMETER


def test_context_is_logged_escaped_beside_the_features_and_read_back(tmp_path: Path) -> None:
    fs, root = fsspec.core.url_to_fs(str(tmp_path))
    plog = PredictionLog(fs=fs, root=root, clock=FixedClock(AT))
    x = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    odd = 'q"\\\n\t\x00é雪'  # quotes, backslash, control characters, unicode
    everyone: dict[str, protocol.Scalar] = {
        "region": "EMEA",
        "a": "not the feature",
        odd: odd,
        "n": 3,
        "f": 0.5,
        "t": True,
    }
    entries = [
        LogEntry("all", "1", AT, ["a", "b"], x, None, 1.0, None, everyone),
        LogEntry("each", "1", AT, ["a", "b"], x, None, 1.0, None, [{"region": "APAC"}, {}]),
        LogEntry("none", "1", AT, ["a", "b"], x[:1], None, 1.0, None),
        LogEntry("null", "1", AT, ["a", "b"], x[:1], None, 1.0, None, {"region": None}),
        LogEntry("one", "1", AT, ["a", "b"], x[:1], None, 1.0, None, {"t": 1}),  # 1 == True
    ]
    for entry in entries:
        plog.add("churn", "production", entry)
    assert plog.flush() == 7
    frame = pd.read_parquet(tmp_path / names.PREDICTION_LOG_DIR).set_index("request_id")
    rows = {rid: json.loads(text) for rid, text in frame["features"].items()}
    # The model's feature wins a clash; the marker names the context columns actually logged.
    context = ["region", odd, "n", "f", "t"]
    assert rows["all#1"] == {
        "a": 3.0,
        "b": 4.0,
        **{k: everyone[k] for k in context},
        CONTEXT_MARKER: context,
    }
    assert rows["each#0"] == {"a": 1.0, "b": 2.0, "region": "APAC", CONTEXT_MARKER: ["region"]}
    assert rows["each#1"] == {"a": 3.0, "b": 4.0}
    assert rows["none"] == {"a": 1.0, "b": 2.0}
    assert rows["null"] == {"a": 1.0, "b": 2.0, "region": None, CONTEXT_MARKER: ["region"]}
    assert rows["one"] == {"a": 1.0, "b": 2.0, "t": 1, CONTEXT_MARKER: ["t"]}

    found = _segments(frame["features"], ["region", odd, "t"])
    assert found["region"].tolist() == ["EMEA", "EMEA", "APAC", None, None, None, None]
    assert found[odd].tolist() == [odd, odd, None, None, None, None, None]
    assert found["t"].tolist() == ["true", "true", None, None, None, None, "1"]
    # Monitoring sees the context columns arrive, and knows they are context.
    schema = logged_schema(frame["features"])
    assert CONTEXT_MARKER not in schema and schema["region"] == "object"
    assert logged_context(frame["features"]) == sorted(context)


BAD_CONTEXTS: list[Any] = [
    {"region": ["EMEA"]},
    {"region": {"code": 1}},
    {"region": "x" * 201},
    {"k" * 129: 1},
    {"": 1},
    {f"k{i}": i for i in range(33)},
    [{"region": "EMEA"}],  # a per-row list must have one object per row (2 here)
    "EMEA",
]


@pytest.mark.parametrize("mode", MIRROR_MODES)
def test_context_reaches_production_and_shadow_rows_and_counts_shadow_segments(
    tmp_path: Path, mode: MirrorMode
) -> None:
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    write_route(routing, shas, production="1.0.0", shadow="1.1.0", mirror_share=1.0)
    config = GatewayConfig(
        store_url=str(store), routing_path=routing, clock=FixedClock(AT), mirror_mode=mode
    )
    features, x = benchmark_rows(12)
    segments = pd.read_parquet(BENCHMARK, columns=SEGMENTS).iloc[:12]
    context = segments.to_dict("records")

    def body(rows: np.ndarray, parameters: Any, request_id: str = "bad") -> dict[str, Any]:
        tensor = {"name": "features", "shape": list(rows.shape), "datatype": "FP32"}
        tensor["data"] = rows.reshape(-1).tolist()
        return {
            "id": request_id,
            "parameters": {"other": [1], "shipyard_context": parameters},
            "inputs": [tensor],
        }

    with running_gateway(config) as gw:
        post = gw.client.post
        for i in range(10):
            sent = post("/v2/models/churn/infer", json=body(x[i : i + 1], context[i], f"r{i:02d}"))
            assert sent.status_code == 200, sent.text
        sent = post("/v2/models/churn/infer", json=body(x[10:12], context[10:12], "r10"))
        assert sent.status_code == 200
        for bad in BAD_CONTEXTS:
            refused = post("/v2/models/churn/infer", json=body(x[:2], bad))
            assert refused.status_code == 400
            assert refused.json() == {"error": protocol.BAD_REQUEST}
        wait_until(
            lambda: gw.metric("shipyard_gateway_requests_total", variant="shadow") == 11,
            timeout_s=15,
            what="the shadow to answer every mirrored request",
        )
    artifacts = ArtifactStore(str(store))
    since = AT - timedelta(hours=1)
    production = read_prediction_log(artifacts, "churn", names.VARIANT_PRODUCTION, since=since)
    shadow = read_prediction_log(artifacts, "churn", names.VARIANT_SHADOW, since=since)
    assert len(production) == len(shadow) == 12
    for logged in (production, shadow):
        by_id = logged.set_index(names.LOG_REQUEST_ID)[names.LOG_FEATURES].sort_index()
        found = _segments(by_id, SEGMENTS)
        assert found.to_dict("records") == [context[i] for i in range(12)]  # ids sort as sent
        assert set(json.loads(by_id.iloc[0])) == {*features, *SEGMENTS, CONTEXT_MARKER}

    policy = parse_policy((REGISTRY / "shipyard.yml").read_text())
    evidence = analyse_shadow(
        production=production,
        shadow=shadow,
        policy=policy,
        profile=None,
        elapsed=timedelta(hours=1),
        latency=NoData(),
    )
    assert evidence.paired == 12 and evidence.missing_segment_columns == []
    counted = {(s.column, s.value): s.samples for s in evidence.segments}
    expected = segments.melt().value_counts().to_dict()
    assert counted == {key: int(n) for key, n in expected.items()}

    # Monitoring: the context columns arrive with the requests but are not new model inputs.
    profile = build_profile(pd.read_parquet(BENCHMARK).iloc[:2000], columns=features)
    window = window_of(
        read_since(artifacts, model="churn", version="1.0.0", since=since),
        start=since,
        end=AT + timedelta(hours=1),
        profile=profile,
        score_column=policy.monitoring.prediction_column,
    )
    assert schema_changes(profile, window.columns).added == tuple(SEGMENTS)
    measured = measure_window(
        profile,
        window.sample,
        policy=policy.monitoring,
        history=[],
        rows=window.rows,
        columns=window.columns,
        ignore=window.context,  # as monitor_check._judge passes it
    )
    assert measured.quality.schema.added == () and measured.quality.schema.missing == ()
