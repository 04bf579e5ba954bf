"""Regression on a Dask cluster: the local engine's MAE, RMSE and R², whatever the partitioning.

Two ONNX regressors (ridge regressions of a continuous target on the fixture features, trained
here with scikit-learn and exported with skl2onnx) are compared on the fixture benchmark with
a synthetic target, whole on the local engine and in 1, 3 and 7 partitions on a LocalCluster.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from distributed import LocalCluster
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import Ridge

from evaluators.distributed.manifest import write_partitioned
from evaluators.evaluate import run_evaluation
from evaluators.policy import Policy, parse_policy
from evaluators.report import EvaluationReport, RunStatus

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "fixtures/registry"
SEGMENTS = ["entity_type", "industry", "region"]
TARGET = "spend_next_quarter"
ROWS = 30_000


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as found:
        yield found


def _features() -> list[str]:
    config = yaml.safe_load((REGISTRY / "production/models/churn/config.yaml").read_text())
    return list(config["features"])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = pd.read_parquet(ROOT / "fixtures/benchmark/churn_benchmark.parquet").iloc[:ROWS].copy()
    x = data[_features()].to_numpy(np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    rng = np.random.default_rng(11)
    # A mean about 60 standard deviations from zero on purpose: R² must keep its digits.
    data[TARGET] = 2_500 + x @ rng.normal(0, 10, x.shape[1]) + rng.normal(0, 5, len(data))
    data["row_id"] = np.arange(len(data), dtype=np.int64) * 5 + 77
    return data


def _model(directory: Path, frame: pd.DataFrame, *, alpha: float, features: list[str]) -> Path:
    x = frame[features].to_numpy(np.float32)
    fitted = Ridge(alpha=alpha).fit(x, frame[TARGET].to_numpy())
    onnx = to_onnx(fitted, initial_types=[("features", FloatTensorType([None, len(features)]))])
    (directory / "weights").mkdir(parents=True)
    (directory / "weights/model.onnx").write_bytes(onnx.SerializeToString())
    config = {
        "name": "spend",
        "task": "regression",
        "format": "onnx",
        "weights": "weights/model.onnx",
        "features": features,
        "input": {"kind": "tensor", "name": "features"},
    }
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    return directory


@pytest.fixture(scope="module")
def models(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("regressors")
    train = frame.iloc[: ROWS // 2]
    features = _features()
    return (
        _model(root / "candidate", train, alpha=10.0, features=features),
        # Production misses three features: clearly worse.
        _model(root / "production", train, alpha=10.0, features=features[3:]),
    )


@pytest.fixture(scope="module")
def benchmarks(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[Any, Any]:
    root = tmp_path_factory.mktemp("benchmarks")
    whole = root / "whole.parquet"
    frame.to_parquet(whole, index=False)
    found: dict[Any, Any] = {"whole": (whole, hashlib.sha256(whole.read_bytes()).hexdigest())}
    rng = np.random.default_rng(3)
    for parts in (1, 3, 7):
        cuts = np.sort(rng.choice(np.arange(1, len(frame)), parts - 1, replace=False))
        bounds = [0, *cuts.tolist(), len(frame)]
        directory = root / f"parts-{parts}"
        sha = write_partitioned(
            (frame.iloc[a:b] for a, b in itertools.pairwise(bounds)),
            directory,
            row_id_column="row_id",
            segment_columns=SEGMENTS,
        )
        found[parts] = (directory, sha)
    return found


def policy(uri: Path | str, sha: str, *, engine: str = "dask") -> Policy:
    data = yaml.safe_load((REGISTRY / "shipyard.yml").read_text())
    data["latency"]["enabled"] = False
    data["benchmark"].update(uri=str(uri), sha256=sha, label_column=TARGET)
    data["statistics"]["engine"] = engine
    data["primary_metric"] = "rmse"
    data["metrics"] = [
        {"name": "rmse", "margin": 0.5, "tolerance": 1.0},
        {"name": "mae", "tolerance": 1.0},
        {"name": "r2", "tolerance": 0.01},
    ]
    data["segments"]["metrics"] = ["rmse", "mae", "r2"]
    return parse_policy(yaml.safe_dump(data))


def evaluate(models: tuple[Path, Path], found: Policy, scheduler: str | None) -> EvaluationReport:
    report = run_evaluation(
        candidate_dir=models[0], baseline_dir=models[1], policy=found, dask_scheduler=scheduler
    )
    assert report.status is RunStatus.COMPLETED, report.error
    return report


def _values(report: EvaluationReport) -> dict[tuple[str, ...], tuple[float, float, float]]:
    found = {
        ("overall", m.metric): (m.candidate, m.baseline, m.ci_high - m.ci_low)
        for m in report.overall
    }
    for segment in report.segments:
        for m in segment.metrics:
            found[(segment.column, segment.value, m.metric)] = (
                m.candidate,
                m.baseline,
                m.ci_high - m.ci_low,
            )
    return found


def test_regression_on_dask_is_the_local_engines_and_the_same_for_any_partitioning(
    models: tuple[Path, Path], benchmarks: dict[Any, Any], cluster: LocalCluster
) -> None:
    local = _values(evaluate(models, policy(*benchmarks["whole"], engine="local"), None))
    on_dask = {
        parts: evaluate(models, policy(*benchmarks[parts]), cluster.scheduler_address)
        for parts in (1, 3, 7)
    }
    found = {parts: _values(report) for parts, report in on_dask.items()}
    assert set(found[1]) == set(local)
    assert any(key[0] == "region" for key in local)  # the segments are there
    for key, (candidate, baseline, width) in local.items():
        got = found[1][key]
        # Points: the same sums, rounded once at the end (R² within its documented bound).
        assert got[0] == pytest.approx(candidate, rel=1e-12), key
        assert got[1] == pytest.approx(baseline, rel=1e-12), key
        # Intervals: the same bootstrap design, groups hashed from row ids instead of drawn.
        assert got[2] == pytest.approx(width, rel=0.25), key
        # Identical, bit for bit, whatever the partitioning.
        assert found[3][key] == got == found[7][key], key
    overall = {m.metric: m for m in on_dask[7].overall}
    assert overall["rmse"].candidate < overall["rmse"].baseline  # lower is better: improved
    assert overall["rmse"].ci_high < 0
    assert on_dask[7].calibration is None
    methods = on_dask[7].statistics.interval_methods
    assert "hashed row-group" in methods["r2"]


def test_a_target_that_is_not_a_number_is_a_clear_error_from_the_cluster(
    models: tuple[Path, Path],
    frame: pd.DataFrame,
    cluster: LocalCluster,
    tmp_path: Path,
) -> None:
    bad = frame.iloc[:2_000].copy()
    bad[TARGET] = bad[TARGET].astype(str)
    bad.loc[bad.index[5], TARGET] = "n/a"
    sha = write_partitioned(
        [bad.iloc[:1_000], bad.iloc[1_000:]],
        tmp_path / "parts",
        row_id_column="row_id",
        segment_columns=SEGMENTS,
    )
    report = run_evaluation(
        candidate_dir=models[0],
        baseline_dir=models[1],
        policy=policy(tmp_path / "parts", sha),
        dask_scheduler=cluster.scheduler_address,
    )
    assert report.status is RunStatus.ERROR
    assert report.error is not None
    assert f"partition 0: the target column {TARGET} is not numeric" in report.error
    assert "Traceback" not in report.error and not report.overall
