"""`compare`: paired comparisons overall and on every segment, judged the way the policy says."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from evaluators.candidate import Task
from evaluators.metrics.registry import get_metric
from evaluators.policy import Policy
from evaluators.report import Outcome
from evaluators.statistics.compare import compare


def binary_case(n: int = 6000, seed: int = 0, gain: float = 0.4) -> tuple[Any, Any, Any, Any]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    noise = rng.standard_normal((n, 2))
    cand = 1 / (1 + np.exp(-(noise[:, 0] + (1.0 + gain) * y - 1)))
    base = 1 / (1 + np.exp(-(0.7 * noise[:, 0] + 0.7 * noise[:, 1] + 1.0 * y - 1)))
    segments = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east"], n),
            "tier": rng.choice(
                np.array(["free", "pro", None], dtype=object), n, p=[0.6, 0.39, 0.01]
            ),
        }
    )
    return y, cand, base, segments


POLICY = Policy.model_validate(
    {
        "metrics": [
            {"name": "roc_auc", "margin": 0.002, "tolerance": 0.005},
            {"name": "log_loss"},
            {"name": "f1"},
            {"name": "pr_auc"},
        ],
        "segments": {"metrics": ["roc_auc", "brier"]},
    }
)


def test_every_segment_value_is_reported_and_tiny_ones_are_not_judged() -> None:
    y, cand, base, segments = binary_case()
    result = compare(
        y_true=y,
        candidate=cand,
        baseline=base,
        segments=segments,
        policy=POLICY,
        task=Task.BINARY,
    )
    listed = {(s.column, s.value) for s in result.segments}
    assert listed == {
        ("region", "east"),
        ("region", "north"),
        ("region", "south"),
        ("tier", "free"),
        ("tier", "pro"),
        ("tier", "(missing)"),
    }
    missing = next(s for s in result.segments if s.value == "(missing)")
    assert missing.rows < POLICY.segments.min_size
    assert missing.outcome is Outcome.TOO_SMALL and missing.metrics == []


def test_segment_numbers_equal_the_registry_metrics_on_the_segment_rows() -> None:
    y, cand, base, segments = binary_case()
    result = compare(
        y_true=y,
        candidate=cand,
        baseline=base,
        segments=segments,
        policy=POLICY,
        task=Task.BINARY,
    )
    for segment in result.segments:
        column = segments[segment.column]
        missing = segment.value == "(missing)"
        rows = (column.isna() if missing else column == segment.value).to_numpy()
        assert segment.rows == rows.sum()
        assert segment.positives == y[rows].sum()
        for found in segment.metrics:
            metric = get_metric(found.metric, task=Task.BINARY)
            assert found.candidate == pytest.approx(
                metric.fn(y_true=y[rows], y_score=cand[rows]), abs=1e-9
            )
            assert found.baseline == pytest.approx(
                metric.fn(y_true=y[rows], y_score=base[rows]), abs=1e-9
            )
            assert found.ci_low <= found.delta <= found.ci_high
            assert found.adjusted_p_value is not None and found.p_value is not None
            assert found.adjusted_p_value >= found.p_value


def test_overall_lists_the_primary_and_tracked_metrics_with_intervals_and_p_values() -> None:
    y, cand, base, _ = binary_case()
    result = compare(
        y_true=y, candidate=cand, baseline=base, segments=None, policy=POLICY, task=Task.BINARY
    )
    assert [m.metric for m in result.overall] == ["roc_auc", "log_loss", "f1", "pr_auc"]
    by_name = {m.metric: m for m in result.overall}
    assert by_name["roc_auc"].method == "delong"
    assert by_name["log_loss"].method == "paired bootstrap (1000 resamples)"
    assert not by_name["log_loss"].higher_is_better
    for found in result.overall:
        metric = get_metric(found.metric, task=Task.BINARY)
        assert found.candidate == pytest.approx(metric.fn(y_true=y, y_score=cand), abs=1e-9)
        assert found.p_value is not None and 0 <= found.p_value <= 1
    assert by_name["roc_auc"].outcome is Outcome.IMPROVED
    assert set(result.statistics.interval_methods) == {
        "roc_auc",
        "log_loss",
        "f1",
        "pr_auc",
        "brier",
    }
    assert "DeLong" in result.statistics.interval_methods["roc_auc"]
    assert "1000 resamples, seed 0" in result.statistics.interval_methods["log_loss"]
    assert "Holm" in result.statistics.correction


def test_a_worse_candidate_regresses_overall_and_identical_models_are_unchanged() -> None:
    y, cand, base, _ = binary_case(gain=0.4)
    worse = compare(
        y_true=y, candidate=base, baseline=cand, segments=None, policy=POLICY, task=Task.BINARY
    )
    assert {m.metric: m.outcome for m in worse.overall}["roc_auc"] is Outcome.REGRESSED
    same = compare(
        y_true=y, candidate=cand, baseline=cand, segments=None, policy=POLICY, task=Task.BINARY
    )
    for found in same.overall:
        assert found.delta == 0 and found.ci_low == found.ci_high == 0
        assert found.outcome is Outcome.UNCHANGED and found.p_value == 1.0


def test_a_wide_tolerance_keeps_a_small_loss_unchanged() -> None:
    y, cand, base, _ = binary_case(gain=0.05)
    lenient = Policy.model_validate({"metrics": [{"name": "roc_auc", "tolerance": 0.5}]})
    result = compare(
        y_true=y, candidate=base, baseline=cand, segments=None, policy=lenient, task=Task.BINARY
    )
    assert result.overall[0].outcome is Outcome.UNCHANGED


def test_the_same_seed_gives_the_same_comparison() -> None:
    y, cand, base, segments = binary_case()
    runs = [
        compare(
            y_true=y,
            candidate=cand,
            baseline=base,
            segments=segments,
            policy=POLICY,
            task=Task.BINARY,
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_bootstrap_method_replaces_delong_when_the_policy_asks() -> None:
    y, cand, base, segments = binary_case()
    policy = Policy.model_validate({"statistics": {"method": "bootstrap", "seed": 3}})
    result = compare(
        y_true=y,
        candidate=cand,
        baseline=base,
        segments=segments,
        policy=policy,
        task=Task.BINARY,
    )
    assert result.overall[0].method.startswith("paired bootstrap")
    assert "seed 3" in result.statistics.interval_methods["roc_auc"]
    assert "quantile bins" in result.statistics.interval_methods["roc_auc"]


def test_min_positives_keeps_a_segment_with_few_positives_unjudged() -> None:
    y, cand, base, segments = binary_case()
    policy = Policy.model_validate({"segments": {"min_size": 10, "min_positives": 10_000}})
    result = compare(
        y_true=y,
        candidate=cand,
        baseline=base,
        segments=segments,
        policy=policy,
        task=Task.BINARY,
    )
    assert {s.outcome for s in result.segments} == {Outcome.TOO_SMALL}
    assert "0 segment comparisons" in result.statistics.correction


def test_multiclass_comparison_uses_macro_metrics_and_has_no_calibration() -> None:
    rng = np.random.default_rng(1)
    n, k = 3000, 3
    y = rng.integers(0, k, n)
    logits = rng.standard_normal((n, k))
    logits[np.arange(n), y] += 1.0
    cand = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    base = np.exp(0.5 * logits) / np.exp(0.5 * logits).sum(1, keepdims=True)
    policy = Policy.model_validate(
        {"metrics": [{"name": "roc_auc"}, {"name": "macro_f1"}, {"name": "log_loss"}]}
    )
    result = compare(
        y_true=y,
        candidate=cand,
        baseline=base,
        segments=pd.DataFrame({"site": rng.choice(["a", "b"], n)}),
        policy=policy,
        task=Task.MULTICLASS,
    )
    names = [m.metric for m in result.overall]
    assert names == ["ovr_roc_auc", "macro_f1", "log_loss"]
    assert result.overall[0].candidate == pytest.approx(
        get_metric("ovr_roc_auc", task=Task.MULTICLASS).fn(y_true=y, y_score=cand), abs=1e-9
    )
    assert result.calibration is None
    assert len(result.segments) == 2


def test_regression_comparison_is_judged_in_the_right_direction() -> None:
    rng = np.random.default_rng(2)
    y = rng.standard_normal(4000)
    policy = Policy.model_validate({"primary_metric": "rmse", "metrics": [{"name": "rmse"}]})
    result = compare(
        y_true=y,
        candidate=y + 0.5 * rng.standard_normal(4000),
        baseline=y + rng.standard_normal(4000),
        segments=None,
        policy=policy,
        task=Task.REGRESSION,
    )
    assert result.overall[0].delta < 0
    assert result.overall[0].outcome is Outcome.IMPROVED


@pytest.mark.parametrize(
    ("y", "cand", "message"),
    [
        (np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]), "class indices"),
        (np.array([0, 1]), np.array([0.1, 0.2, 0.3]), "shapes differ"),
        (np.array([0, 1, 1]), np.array([0.1, np.nan, 0.3]), "NaN"),
    ],
    ids=["a label outside 0/1 is refused", "mismatched lengths are refused", "NaN is refused"],
)
def test_invalid_inputs_are_refused_with_a_clear_message(y: Any, cand: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare(
            y_true=y,
            candidate=cand,
            baseline=np.array([0.1, 0.2, 0.3]),
            segments=None,
            policy=Policy(),
            task=Task.BINARY,
        )
