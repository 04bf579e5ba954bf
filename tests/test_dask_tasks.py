"""Regression and multiclass on a Dask cluster: the local engine's answers, whatever the
partitioning.

Model pairs are trained here with scikit-learn on the fixture features and exported with
skl2onnx: ridge regressions of a synthetic continuous target (MAE, RMSE, R²), and multinomial
logistic regressions of a synthetic three-class plan (one-vs-rest ROC AUC, accuracy, macro F1,
log loss). Production misses three features, so the candidate is better. Each pair is compared
on the fixture benchmark whole on the local engine and in 1, 3 and 7 partitions on a
LocalCluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from distributed import LocalCluster
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from evaluators.evaluate import run_evaluation
from evaluators.policy import Policy, parse_policy
from evaluators.report import EvaluationReport, RunStatus
from tests.partitioned_benchmarks import partitioned, uneven_partitions

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "fixtures/registry"
TARGET = "spend_next_quarter"
PLAN = "plan_next_year"
PLANS = ["basic", "enterprise", "pro"]  # scikit-learn's order of the classes (sorted)
ROWS = 30_000

Key = tuple[str, ...]


def _features() -> list[str]:
    config = yaml.safe_load((REGISTRY / "production/models/churn/config.yaml").read_text())
    return list(config["features"])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = pd.read_parquet(ROOT / "fixtures/benchmark/churn_benchmark.parquet").iloc[:ROWS].copy()
    x = data[_features()].to_numpy(np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    rng = np.random.default_rng(11)
    # A mean about 57 standard deviations from zero on purpose: R² must keep its digits.
    data[TARGET] = 2_500 + x @ rng.normal(0, 10, x.shape[1]) + rng.normal(0, 5, len(data))
    propensity = x @ rng.normal(0, 1, x.shape[1]) + rng.logistic(0, 1, len(data))
    cuts = np.quantile(propensity, [0.5, 0.8])
    data[PLAN] = np.asarray(["basic", "pro", "enterprise"])[np.searchsorted(cuts, propensity)]
    data["row_id"] = np.arange(len(data), dtype=np.int64) * 5 + 77
    return data


def _save(directory: Path, fitted: Any, config: dict[str, Any], features: list[str]) -> Path:
    onnx = to_onnx(
        fitted,
        initial_types=[("features", FloatTensorType([None, len(features)]))],
        options={LogisticRegression: {"zipmap": False}},
    )
    (directory / "weights").mkdir(parents=True)
    (directory / "weights/model.onnx").write_bytes(onnx.SerializeToString())
    config |= {
        "format": "onnx",
        "weights": "weights/model.onnx",
        "features": features,
        "input": {"kind": "tensor", "name": "features"},
    }
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    return directory


@pytest.fixture(scope="module")
def models(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """(candidate, production) per task; production misses three features."""
    root = tmp_path_factory.mktemp("models")
    train = frame.iloc[: ROWS // 2]
    everything = _features()
    found: dict[str, Any] = {}
    for role, features in (("candidate", everything), ("production", everything[3:])):
        x = train[features].to_numpy(np.float32)
        regressor = make_pipeline(StandardScaler(), Ridge()).fit(x, train[TARGET].to_numpy())
        classifier = make_pipeline(StandardScaler(), LogisticRegression())
        classifier.fit(x, train[PLAN].to_numpy())
        assert list(classifier.classes_) == PLANS
        found.setdefault("regression", []).append(
            _save(
                root / f"regression-{role}",
                regressor,
                {"name": "spend", "task": "regression"},
                features,
            )
        )
        multiclass = {"name": "plan", "task": "multiclass_classification", "classes": PLANS}
        found.setdefault("multiclass", []).append(
            _save(root / f"multiclass-{role}", classifier, multiclass, features)
        )
    return found


@pytest.fixture(scope="module")
def benchmarks(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[Any, Any]:
    return uneven_partitions(frame, tmp_path_factory.mktemp("benchmarks"), seed=3)


POLICIES: dict[str, dict[str, Any]] = {
    "regression": {
        "label_column": TARGET,
        "primary_metric": "rmse",
        "metrics": [
            {"name": "rmse", "margin": 0.5, "tolerance": 1.0},
            {"name": "mae", "tolerance": 1.0},
            {"name": "r2", "tolerance": 0.01},
        ],
        "segments": ["rmse", "mae", "r2"],
    },
    "multiclass": {
        "label_column": PLAN,
        "primary_metric": "roc_auc",  # one-vs-rest for a multiclass model
        "metrics": [
            {"name": "roc_auc", "margin": 0.002, "tolerance": 0.005},
            {"name": "accuracy", "tolerance": 0.01},
            {"name": "f1", "tolerance": 0.01},  # macro F1 for a multiclass model
            {"name": "log_loss", "tolerance": 0.01},
        ],
        "segments": ["roc_auc", "log_loss", "f1"],
    },
}


def policy(task: str, uri: Path | str, sha: str, *, engine: str = "dask") -> Policy:
    data = yaml.safe_load((REGISTRY / "shipyard.yml").read_text())
    wanted = POLICIES[task]
    data["latency"]["enabled"] = False
    data["benchmark"].update(uri=str(uri), sha256=sha, label_column=wanted["label_column"])
    data["statistics"]["engine"] = engine
    data["primary_metric"] = wanted["primary_metric"]
    data["metrics"] = wanted["metrics"]
    data["segments"]["metrics"] = wanted["segments"]
    return parse_policy(yaml.safe_dump(data))


def evaluate(pair: list[Path], found: Policy, scheduler: str | None) -> EvaluationReport:
    report = run_evaluation(
        candidate_dir=pair[0], baseline_dir=pair[1], policy=found, dask_scheduler=scheduler
    )
    assert report.status is RunStatus.COMPLETED, report.error
    return report


def _values(report: EvaluationReport) -> dict[Key, tuple[float, float, float]]:
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


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_the_dask_engine_gives_the_local_engines_answers_for_any_partitioning(
    task: str, models: dict[str, Any], benchmarks: dict[Any, Any], cluster: LocalCluster
) -> None:
    pair = models[task]
    local = _values(evaluate(pair, policy(task, *benchmarks["whole"], engine="local"), None))
    on_dask = {
        parts: evaluate(pair, policy(task, *benchmarks[parts]), cluster.scheduler_address)
        for parts in (1, 3, 7)
    }
    found = {parts: _values(report) for parts, report in on_dask.items()}
    assert set(found[1]) == set(local)
    assert any(key[0] == "region" for key in local)  # the segments are there
    for key, (candidate, baseline, width) in local.items():
        got = found[1][key]
        # Points: the same sums and counts, rounded once at the end (R² within its bound).
        assert got[0] == pytest.approx(candidate, rel=1e-12), key
        assert got[1] == pytest.approx(baseline, rel=1e-12), key
        # Intervals: the same bootstrap design, groups hashed from row ids instead of drawn.
        assert got[2] == pytest.approx(width, rel=0.25), key
        # Identical, bit for bit, whatever the partitioning.
        assert found[3][key] == got == found[7][key], key
    report = on_dask[7]
    assert report.calibration is None
    primary = report.overall[0]  # ovr_roc_auc for the policy's roc_auc, rmse
    assert primary.outcome.value == "improved", primary  # the candidate has every feature
    assert "hashed row-group" in report.statistics.interval_methods[primary.metric]


@pytest.mark.parametrize(
    ("task", "column", "row", "value", "message"),
    [
        ("regression", TARGET, 5, "n/a", f"partition 0: the target column {TARGET} is not numeric"),
        (
            "multiclass",
            PLAN,
            1_500,
            "platinum<script>",
            "partition 1: labels ['platinum<script>'] are not among the model's classes",
        ),
    ],
)
def test_a_label_the_task_cannot_read_is_a_clear_error_from_the_cluster(
    task: str,
    column: str,
    row: int,
    value: str,
    message: str,
    models: dict[str, Any],
    frame: pd.DataFrame,
    cluster: LocalCluster,
    tmp_path: Path,
) -> None:
    bad = frame.iloc[:2_000].copy()
    bad[column] = bad[column].astype(str)
    bad.loc[bad.index[row], column] = value
    sha = partitioned(bad, [0, 1_000, 2_000], tmp_path / "parts")
    report = run_evaluation(
        candidate_dir=models[task][0],
        baseline_dir=models[task][1],
        policy=policy(task, tmp_path / "parts", sha),
        dask_scheduler=cluster.scheduler_address,
    )
    assert report.status is RunStatus.ERROR
    assert report.error is not None
    assert message in report.error
    assert "Traceback" not in report.error and not report.overall


def test_multiclass_without_its_classes_in_config_is_refused_before_the_cluster(
    models: dict[str, Any], benchmarks: dict[Any, Any], tmp_path: Path
) -> None:
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    source = models["multiclass"][0]
    (candidate / "weights").mkdir()
    (candidate / "weights/model.onnx").write_bytes((source / "weights/model.onnx").read_bytes())
    config = yaml.safe_load((source / "config.yaml").read_text())
    del config["classes"]
    (candidate / "config.yaml").write_text(yaml.safe_dump(config))
    report = run_evaluation(
        candidate_dir=candidate,
        baseline_dir=models["multiclass"][1],
        policy=policy("multiclass", *benchmarks[3]),
        dask_scheduler="tcp://127.0.0.1:9",  # never contacted
    )
    assert report.status is RunStatus.ERROR
    assert report.error is not None
    assert "needs the model's classes listed in config.yaml" in report.error
