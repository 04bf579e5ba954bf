"""One warm worker per evaluation verifies, loads, scores and times both models, within limits."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluators.artifacts.inference import feature_matrix, open_runner, predict_batched
from evaluators.artifacts.loading import UnsafeArtifactError
from evaluators.artifacts.model_worker import (
    BASELINE,
    CANDIDATE,
    ModelWorker,
    WorkerTimeout,
    models_of,
)
from evaluators.candidate import ModelConfig
from evaluators.policy import LatencyPolicy
from evaluators.report import RunStatus

REGISTRY = Path(__file__).resolve().parent.parent / "fixtures" / "registry"
BENCHMARK = REGISTRY.parent / "benchmark" / "churn_benchmark.parquet"
SMALL = LatencyPolicy(requests=40, rounds=5, concurrency=1, batch_size=16, throughput_rows=64)


def _models(candidate: Path) -> dict[str, tuple[Path, ModelConfig]]:
    models = models_of(candidate, REGISTRY / "production/models/churn")
    assert models is not None
    return models


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return pd.read_parquet(BENCHMARK).iloc[:3000]


def test_both_models_score_in_one_worker_exactly_as_in_process(rows: pd.DataFrame) -> None:
    models = _models(REGISTRY / "candidate_better/models/churn")
    with ModelWorker() as worker:
        worker.load(models, memory_mb=2048, timeout_s=120)
        for role, (directory, config) in models.items():
            loaded = worker.loaded(role)
            assert loaded.sha256 and loaded.artifact_error is None and loaded.failure is None
            x = feature_matrix(rows, config.features)
            worker.send_features(role, x)
            result = worker.predict(role)
            assert result.status is RunStatus.COMPLETED and result.proba is not None
            expected = predict_batched(
                open_runner(model_dir=directory, config=config),
                x,
                batch_size=65536,
            )
            np.testing.assert_array_equal(result.proba, expected)
        worker.start_latency(rows=500, policy=SMALL, confidence=0.95)
        section = worker.latency()
    assert section is not None and section.requests == 40 and section.rounds == 5


def test_a_pickled_artifact_is_refused_by_the_worker_with_the_loaders_message(
    tmp_path: Path,
) -> None:
    candidate = tmp_path / "models/churn"
    shutil.copytree(REGISTRY / "candidate_better/models/churn", candidate)
    (candidate / "weights/model.onnx").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    with ModelWorker() as worker:
        worker.load(_models(candidate), memory_mb=2048, timeout_s=120)
        refused = worker.loaded(CANDIDATE)
        assert isinstance(refused.artifact_error, UnsafeArtifactError)
        assert "pickle" in str(refused.artifact_error).lower()
        assert worker.loaded(BASELINE).sha256  # the other model is unaffected


def test_a_worker_past_its_timeout_is_killed_and_reported_as_timed_out() -> None:
    with ModelWorker() as worker:
        worker.load(
            _models(REGISTRY / "candidate_slower/models/churn"),
            memory_mb=2048,
            timeout_s=0.01,
        )
        loaded = worker.loaded(CANDIDATE)
    assert loaded.failure is not None and loaded.failure.status is RunStatus.TIMED_OUT
    assert "did not finish within 0.01 s" in loaded.failure.message


def test_an_early_predict_is_the_answer_when_the_same_features_come_again(
    rows: pd.DataFrame,
) -> None:
    # `shipyard evaluate` sends features and starts scoring before it has read the benchmark
    # with pandas; the evaluation then sends its own features. Equal ones are not written or
    # scored again; different ones are scored, and the early answer is never taken for them.
    models = _models(REGISTRY / "candidate_better/models/churn")
    (_, config) = models[CANDIDATE]
    x = feature_matrix(rows, config.features)
    other = np.ascontiguousarray(x[::-1])
    with ModelWorker() as worker:
        worker.load(models, memory_mb=2048, timeout_s=120)
        worker.send_features(CANDIDATE, x)
        worker.start_predict(CANDIDATE)
        worker.send_features(CANDIDATE, x.copy())  # the evaluation's own, equal matrix
        assert len(list(worker.job_dir.glob("candidate.features.*.npy"))) == 1
        early = worker.predict(CANDIDATE)

        worker.send_features(BASELINE, x)
        worker.start_predict(BASELINE)
        worker.send_features(BASELINE, other)  # differs: scored again, on these rows
        late = worker.predict(BASELINE)
        alone = worker.predict(CANDIDATE)  # answered from the first, still current, matrix
    assert early.status is late.status is alone.status is RunStatus.COMPLETED
    assert early.proba is not None and late.proba is not None and alone.proba is not None
    np.testing.assert_array_equal(early.proba, alone.proba)
    directory, baseline_config = models[BASELINE]
    expected = predict_batched(
        open_runner(model_dir=directory, config=baseline_config), other, batch_size=65536
    )
    np.testing.assert_array_equal(late.proba, expected)


def test_latency_asked_for_twice_is_measured_once(rows: pd.DataFrame) -> None:
    models = _models(REGISTRY / "candidate_better/models/churn")
    with ModelWorker() as worker:
        worker.load(models, memory_mb=2048, timeout_s=120)
        for role, (_, config) in models.items():
            worker.send_features(role, feature_matrix(rows, config.features))
        worker.start_latency(rows=500, policy=SMALL, confidence=0.95)
        worker.start_latency(rows=500, policy=SMALL, confidence=0.95)
        assert worker.latency() is not None
        # A second measurement would have sent a second answer; none is waiting.
        with pytest.raises(WorkerTimeout):
            worker._wait("latency", "", timeout_s=1.0)
