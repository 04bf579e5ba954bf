"""Inference runs in a worker with limits, feeds inputs as config.yaml says, and never hangs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from onnx import TensorProto, helper

from evaluators.artifacts.inference import OnnxRunner, open_runner, predict_proba
from evaluators.candidate import ModelConfig, parse_model_config
from evaluators.report import RunStatus

REGISTRY = Path(__file__).resolve().parent.parent / "fixtures" / "registry"
BENCHMARK = REGISTRY.parent / "benchmark" / "churn_benchmark.parquet"


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return pd.read_parquet(BENCHMARK).iloc[:2000]


def _fixture(variant: str) -> tuple[Path, ModelConfig]:
    model_dir = REGISTRY / variant / "models" / "churn"
    return model_dir, parse_model_config((model_dir / "config.yaml").read_text())


def _write_model(
    tmp_path: Path, graph: object, config: Mapping[str, object]
) -> tuple[Path, ModelConfig]:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])  # type: ignore[arg-type]
    model_dir = tmp_path / "models" / "m"
    (model_dir / "weights").mkdir(parents=True)
    (model_dir / "weights" / "model.onnx").write_bytes(model.SerializeToString())
    base = {"name": "m", "format": "onnx", "weights": "weights/model.onnx"}
    return model_dir, ModelConfig.model_validate({**base, **config})


def _columns_model(tmp_path: Path) -> tuple[Path, ModelConfig]:
    """P(positive) = sigmoid(a - b), with one [n, 1] input per feature."""
    graph = helper.make_graph(
        [helper.make_node("Sub", ["a", "b"], ["z"]), helper.make_node("Sigmoid", ["z"], ["p"])],
        "columns",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 1]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 1]),
        ],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 1])],
    )
    config = {"task": "binary_classification", "features": ["a", "b"], "input": {"kind": "columns"}}
    return _write_model(tmp_path, graph, config)


def _softmax_model(tmp_path: Path) -> tuple[Path, ModelConfig]:
    """Three-class probabilities = softmax of the three features."""
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["probabilities"], axis=1)],
        "softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3])],
    )
    config = {
        "task": "multiclass_classification",
        "features": ["f1", "f2", "f3"],
        "input": {"kind": "tensor", "name": "x"},
        "classes": ["low", "mid", "high"],
    }
    return _write_model(tmp_path, graph, config)


@pytest.mark.parametrize("variant", ["production", "candidate_skops"])
def test_the_worker_returns_the_models_probabilities(rows: pd.DataFrame, variant: str) -> None:
    model_dir, config = _fixture(variant)
    result = predict_proba(
        model_dir=model_dir,
        config=config,
        frame=rows,
        timeout_s=120,
        memory_mb=4096,
        batch_size=700,
    )
    assert result.status is RunStatus.COMPLETED, result.message
    assert result.proba is not None
    assert result.proba.shape == (len(rows),) and result.proba.dtype == np.float64
    expected = np.load(REGISTRY / variant / "expected_proba.npy")
    np.testing.assert_allclose(result.proba[:1000], expected, atol=1e-5)


def test_the_worker_and_the_in_process_runner_agree(rows: pd.DataFrame) -> None:
    model_dir, config = _fixture("candidate_better")
    runner = open_runner(model_dir=model_dir, config=config)
    local = runner.predict(rows[config.features].to_numpy(np.float32))
    remote = predict_proba(
        model_dir=model_dir, config=config, frame=rows, timeout_s=120, memory_mb=4096
    )
    assert remote.proba is not None
    np.testing.assert_allclose(remote.proba, local, atol=1e-7)


def test_one_input_per_column_is_fed_by_feature_name(tmp_path: Path) -> None:
    model_dir, config = _columns_model(tmp_path)
    frame = pd.DataFrame({"b": [0.0, 2.0], "a": [2.0, 0.0]})
    result = predict_proba(
        model_dir=model_dir, config=config, frame=frame, timeout_s=120, memory_mb=4096
    )
    assert result.proba is not None, result.message
    assert result.proba == pytest.approx([1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))], abs=1e-6)


def test_multiclass_models_return_one_column_per_class(tmp_path: Path) -> None:
    model_dir, config = _softmax_model(tmp_path)
    runner = OnnxRunner.open(model_dir=model_dir, config=config)
    proba = runner.predict(np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]], np.float32))
    assert proba.shape == (2, 3)
    assert proba.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert proba[0] == pytest.approx([1 / 3] * 3) and proba[1].argmax() == 0


def test_a_run_over_its_time_limit_is_reported_as_timed_out(rows: pd.DataFrame) -> None:
    model_dir, config = _fixture("production")
    started = time.monotonic()
    result = predict_proba(
        model_dir=model_dir, config=config, frame=rows, timeout_s=0.05, memory_mb=4096
    )
    assert result.status is RunStatus.TIMED_OUT
    assert "0.05 s" in result.message and result.proba is None
    assert time.monotonic() - started < 10


def test_a_run_over_its_memory_limit_is_an_error_that_names_the_limit(rows: pd.DataFrame) -> None:
    model_dir, config = _fixture("production")
    result = predict_proba(
        model_dir=model_dir, config=config, frame=rows, timeout_s=120, memory_mb=128
    )
    assert result.status is RunStatus.ERROR
    assert "memory limit of 128 MB" in result.message


def test_a_missing_feature_column_is_named_with_the_columns_that_exist(rows: pd.DataFrame) -> None:
    model_dir, config = _fixture("production")
    result = predict_proba(
        model_dir=model_dir,
        config=config,
        frame=rows.drop(columns=["nps_score"]),
        timeout_s=120,
        memory_mb=4096,
    )
    assert result.status is RunStatus.ERROR
    assert "nps_score" in result.message and "tenure_months" in result.message


def test_a_wrong_input_name_in_config_is_explained(tmp_path: Path) -> None:
    model_dir, config = _softmax_model(tmp_path)
    wrong = config.model_copy(update={"input": config.input.model_copy(update={"name": "input"})})
    frame = pd.DataFrame({"f1": [1.0], "f2": [2.0], "f3": [3.0]})
    result = predict_proba(
        model_dir=model_dir, config=wrong, frame=frame, timeout_s=120, memory_mb=4096
    )
    assert result.status is RunStatus.ERROR
    assert "'input' is not a model input" in result.message and "x" in result.message


def test_a_model_that_fails_to_score_is_explained_without_an_exception_or_a_path(
    tmp_path: Path,
) -> None:
    # The graph takes three columns; the config names two: onnxruntime refuses every batch.
    model_dir, config = _softmax_model(tmp_path)
    short = config.model_copy(update={"features": ["f1", "f2"]})
    frame = pd.DataFrame({"f1": [1.0], "f2": [2.0]})
    result = predict_proba(
        model_dir=model_dir, config=short, frame=frame, timeout_s=120, memory_mb=4096
    )
    assert result.status is RunStatus.ERROR
    assert result.message.startswith("the model failed: "), result.message
    assert "invalid dimensions" in result.message.lower()  # onnxruntime's own reason
    assert "Traceback" not in result.message and "InvalidArgument:" not in result.message
    assert "/tmp" not in result.message and str(tmp_path) not in result.message


def test_plain_reasons_drop_the_exception_class_paths_and_control_characters() -> None:
    from evaluators.artifacts.worker_process import plain_reason

    log = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/evaluators/artifacts/model_worker.py", line 10, in main\n'
        "onnxruntime.capi.onnxruntime_pybind11_state.Fail: [ONNXRuntimeError] : 1 : FAIL : "
        "Load model from /tmp/shipyard-worker-x/m.onnx failed\x1b[31m\n"
    )
    assert plain_reason(log, last=True) == (
        "[ONNXRuntimeError] : 1 : FAIL : Load model from <path> failed [31m"
    )
    assert plain_reason("ValueError: bad input\nmore") == "bad input"
    assert plain_reason("") == ""
    assert len(plain_reason("x" * 5000)) == 300
