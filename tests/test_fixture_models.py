"""The committed fixture registry holds real models with the properties the demo relies on."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from evaluators.artifacts.benchmark_data import load_benchmark
from evaluators.artifacts.inference import Runner, open_runner
from evaluators.candidate import (
    REQUIRED_FILES,
    parse_claimed_results,
    parse_data_manifest,
    parse_model_config,
)
from evaluators.policy import parse_policy

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REGISTRY = FIXTURES / "registry"
VARIANTS = [
    "production",
    "candidate_better",
    "candidate_segment_regression",
    "candidate_miscalibrated",
    "candidate_slower",
    "candidate_skops",
]


def _model_dir(variant: str) -> Path:
    return REGISTRY / variant / "models" / "churn"


def _runner(variant: str) -> Runner:
    config = parse_model_config((_model_dir(variant) / "config.yaml").read_text())
    return open_runner(model_dir=_model_dir(variant), config=config)


@pytest.fixture(scope="module")
def benchmark() -> pd.DataFrame:
    policy = parse_policy((REGISTRY / "shipyard.yml").read_text())
    assert policy.benchmark is not None
    return load_benchmark(policy=policy.benchmark, base_dir=REGISTRY).frame


@pytest.fixture(scope="module")
def proba(benchmark: pd.DataFrame) -> dict[str, NDArray[np.float64]]:
    out = {}
    for variant in VARIANTS:
        runner = _runner(variant)
        out[variant] = runner.predict(benchmark[runner.features].to_numpy(np.float32))
    return out


def _ece(y: NDArray[np.int64], p: NDArray[np.float64], bins: int = 10) -> float:
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    return float(
        sum(
            (index == b).mean() * abs(p[index == b].mean() - y[index == b].mean())
            for b in range(bins)
            if (index == b).any()
        )
    )


def test_the_benchmark_is_large_with_segments_ids_and_a_binary_label(
    benchmark: pd.DataFrame,
) -> None:
    assert len(benchmark) >= 100_000
    assert benchmark["customer_id"].is_unique and benchmark["customer_id"].iloc[0] == "C0000001"
    assert set(benchmark["churned"].unique()) == {0, 1}
    assert set(benchmark["entity_type"].unique()) == {
        "individual",
        "smb",
        "enterprise",
        "public_sector",
    }
    assert benchmark["industry"].nunique() == 8 and benchmark["region"].nunique() == 5


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_is_a_complete_valid_registry_model(variant: str) -> None:
    model_dir = _model_dir(variant)
    for name in REQUIRED_FILES:
        assert (model_dir / name).is_file(), name
    config = parse_model_config((model_dir / "config.yaml").read_text())
    assert (config.name, config.task.value, config.positive_class, config.threshold) == (
        "churn",
        "binary_classification",
        1,
        0.5,
    )
    assert (model_dir / config.weights).stat().st_size < 5 * 1024 * 1024
    parse_claimed_results((model_dir / "eval_results.json").read_text())
    assert parse_data_manifest((model_dir / "data_manifest.txt").read_text())[0] == (
        "snapshot:churn-train-2026-10"
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_exported_artifacts_reproduce_the_scikit_learn_probabilities(
    variant: str, proba: dict[str, NDArray[np.float64]]
) -> None:
    expected = np.load(REGISTRY / variant / "expected_proba.npy", allow_pickle=False)
    np.testing.assert_allclose(proba[variant][:1000], expected, atol=1e-5)


def test_the_fixtures_stay_small() -> None:
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert total < 25 * 1024 * 1024


@pytest.mark.parametrize(
    "variant",
    [
        "candidate_better",
        "candidate_segment_regression",
        "candidate_miscalibrated",
        "candidate_slower",
        "candidate_skops",
    ],
)
def test_every_candidate_beats_production_overall(
    variant: str, benchmark: pd.DataFrame, proba: dict[str, NDArray[np.float64]]
) -> None:
    y = benchmark["churned"].to_numpy()
    assert roc_auc_score(y, proba[variant]) > roc_auc_score(y, proba["production"]) + 0.02


@pytest.mark.parametrize("column", ["entity_type", "region"])
def test_the_better_candidate_is_better_on_every_segment(
    column: str, benchmark: pd.DataFrame, proba: dict[str, NDArray[np.float64]]
) -> None:
    for _, rows in benchmark.groupby(column):
        y, i = rows["churned"].to_numpy(), rows.index.to_numpy()
        assert roc_auc_score(y, proba["candidate_better"][i]) > roc_auc_score(
            y, proba["production"][i]
        )


def test_the_segment_regression_is_clearly_worse_on_public_sector_only(
    benchmark: pd.DataFrame, proba: dict[str, NDArray[np.float64]]
) -> None:
    deltas = {}
    for value, rows in benchmark.groupby("entity_type"):
        y, i = rows["churned"].to_numpy(), rows.index.to_numpy()
        deltas[value] = roc_auc_score(y, proba["candidate_segment_regression"][i]) - (
            roc_auc_score(y, proba["production"][i])
        )
    assert deltas.pop("public_sector") < -0.04
    assert all(delta > 0 for delta in deltas.values())


def test_the_miscalibrated_candidate_ranks_well_but_is_badly_calibrated(
    benchmark: pd.DataFrame, proba: dict[str, NDArray[np.float64]]
) -> None:
    y = benchmark["churned"].to_numpy()
    auc = {v: roc_auc_score(y, proba[v]) for v in ("candidate_better", "candidate_miscalibrated")}
    assert abs(auc["candidate_better"] - auc["candidate_miscalibrated"]) < 0.02
    assert _ece(y, proba["candidate_miscalibrated"]) > 0.2
    assert _ece(y, proba["candidate_better"]) < 0.03


def test_the_slower_candidate_has_the_same_quality_and_is_slower(
    benchmark: pd.DataFrame, proba: dict[str, NDArray[np.float64]]
) -> None:
    y = benchmark["churned"].to_numpy()
    assert (
        abs(
            roc_auc_score(y, proba["candidate_slower"])
            - roc_auc_score(y, proba["candidate_better"])
        )
        < 0.01
    )
    x = benchmark[_runner("candidate_better").features].to_numpy(np.float32)[:5000]

    def best_of_three(runner: Runner) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            runner.predict(x)
            times.append(time.perf_counter() - started)
        return min(times)

    assert best_of_three(_runner("candidate_slower")) > 2.5 * best_of_three(
        _runner("candidate_better")
    )


def test_only_the_miscalibrated_candidate_inflates_its_claim(
    benchmark: pd.DataFrame, proba: dict[str, NDArray[np.float64]]
) -> None:
    y = benchmark["churned"].to_numpy()
    for variant in VARIANTS:
        claims = parse_claimed_results((_model_dir(variant) / "eval_results.json").read_text())
        gap = claims.metrics["roc_auc"] - roc_auc_score(y, proba[variant])
        if variant == "candidate_miscalibrated":
            assert gap > 0.04
        else:
            assert abs(gap) < 0.02, variant


def test_only_the_slower_candidate_lists_benchmark_ids_in_its_manifest(
    benchmark: pd.DataFrame,
) -> None:
    ids = set(benchmark["customer_id"])
    for variant in VARIANTS:
        listed = parse_data_manifest((_model_dir(variant) / "data_manifest.txt").read_text())
        overlap = ids.intersection(listed)
        assert len(overlap) == (300 if variant == "candidate_slower" else 0), variant
