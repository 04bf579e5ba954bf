"""Paired intervals: DeLong equals its textbook form, the bootstrap is seeded and agrees with it,
binning for the resamples costs < 1e-3 AUC, and the multiple-testing adjustments are standard."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from evaluators.candidate import Task
from evaluators.metrics.ranking import auc_from_histograms, quantile_bins
from evaluators.metrics.registry import get_metric
from evaluators.policy import CorrectionMethod
from evaluators.statistics.compare_engine import PairedData, estimate
from evaluators.statistics.intervals import make_poisson_bootstrap, normal_interval, normal_p_value
from evaluators.statistics.multiple_testing import benjamini_hochberg, holm, interval_confidence
from evaluators.statistics.resample_bins import OVERALL_BINS, bins_for

ROC_AUC = get_metric("roc_auc", task=Task.BINARY)


def paired(n: int, seed: int, *, ties: bool = False) -> PairedData:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(np.int64)
    a = rng.standard_normal(n) + 1.1 * y
    b = 0.6 * a + 0.8 * rng.standard_normal(n) + 0.5 * y
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    return PairedData(y, a, b, Task.BINARY, 0.5)


def textbook_delong_se(y: Any, a: Any, b: Any) -> float:
    """DeLong et al. (1988) with explicit pairwise kernels: O(P·N), for small data only."""
    pos, neg = y == 1, y == 0

    def components(score: Any) -> tuple[Any, Any]:
        diff = score[pos][:, None] - score[neg][None, :]
        kernel = (diff > 0) + 0.5 * (diff == 0)
        return kernel.mean(axis=1), kernel.mean(axis=0)

    (a10, a01), (b10, b01) = components(a), components(b)
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    contrast = np.array([1.0, -1.0])
    var = contrast @ s10 @ contrast / pos.sum() + contrast @ s01 @ contrast / neg.sum()
    return float(np.sqrt(var))


@pytest.mark.parametrize("ties", [False, True], ids=["distinct scores", "tied scores"])
def test_delong_standard_error_equals_the_textbook_computation_overall_and_per_segment(
    ties: bool,
) -> None:
    data = paired(900, seed=1, ties=ties)
    codes = np.random.default_rng(2).integers(0, 3, data.n_rows)
    overall = estimate(
        data=data, codes=None, n_segments=1, metrics=[ROC_AUC], delong={"roc_auc"}, bootstrap=None
    )["roc_auc"]
    assert overall.se[0] == pytest.approx(
        textbook_delong_se(data.y, data.candidate, data.baseline), rel=1e-10
    )
    per_segment = estimate(
        data=data, codes=codes, n_segments=3, metrics=[ROC_AUC], delong={"roc_auc"}, bootstrap=None
    )["roc_auc"]
    for s in range(3):
        rows = codes == s
        assert per_segment.se[s] == pytest.approx(
            textbook_delong_se(data.y[rows], data.candidate[rows], data.baseline[rows]), rel=1e-10
        )
        assert per_segment.candidate[s] == pytest.approx(
            ROC_AUC.fn(y_true=data.y[rows], y_score=data.candidate[rows]), abs=1e-12
        )


def bootstrap_auc(data: PairedData, *, seed: int, codes: Any = None, k: int = 1) -> Any:
    boot = make_poisson_bootstrap(n_rows=data.n_rows, resamples=1000, seed=seed)
    return estimate(
        data=data, codes=codes, n_segments=k, metrics=[ROC_AUC], delong=set(), bootstrap=boot
    )["roc_auc"]


def test_the_bootstrap_is_reproducible_for_a_seed_and_changes_with_it() -> None:
    data = paired(3000, seed=3)
    first, again, other = (bootstrap_auc(data, seed=s) for s in (5, 5, 6))
    assert first.se[0] == again.se[0]
    assert first.se[0] != other.se[0]


def test_bootstrap_and_delong_agree_on_the_auc_standard_error() -> None:
    data = paired(20_000, seed=4)
    codes = np.random.default_rng(0).integers(0, 4, data.n_rows)
    delong = estimate(
        data=data, codes=codes, n_segments=4, metrics=[ROC_AUC], delong={"roc_auc"}, bootstrap=None
    )["roc_auc"]
    boot = bootstrap_auc(data, seed=0, codes=codes, k=4)
    np.testing.assert_allclose(boot.se, delong.se, rtol=0.12)
    np.testing.assert_allclose(boot.delta, delong.delta, atol=0)  # point estimates stay exact


def test_bootstrap_of_a_mean_metric_matches_the_standard_error_of_a_paired_mean() -> None:
    data = paired(20_000, seed=5)
    data = PairedData(
        data.y,
        1 / (1 + np.exp(-data.candidate)),
        1 / (1 + np.exp(-data.baseline)),
        Task.BINARY,
        0.5,
    )
    brier = get_metric("brier", task=Task.BINARY)
    boot = make_poisson_bootstrap(n_rows=data.n_rows, resamples=1000, seed=1)
    found = estimate(
        data=data, codes=None, n_segments=1, metrics=[brier], delong=set(), bootstrap=boot
    )["brier"]
    per_row = (data.candidate - data.y) ** 2 - (data.baseline - data.y) ** 2
    assert found.se[0] == pytest.approx(per_row.std(ddof=1) / np.sqrt(data.n_rows), rel=0.1)


@pytest.mark.parametrize("rounding", [None, 3, 2], ids=["continuous", "3-decimal", "2-decimal"])
def test_auc_on_the_resampling_bins_is_within_1e_3_of_the_exact_auc(rounding: int | None) -> None:
    rng = np.random.default_rng(8)
    n = 200_000
    y = (rng.random(n) < 0.2).astype(np.int64)
    score = 1 / (1 + np.exp(-(rng.standard_normal(n) + 1.5 * y)))
    if rounding is not None:
        score = np.round(score, rounding)
    order = np.argsort(score, kind="stable")
    bins = int(bins_for(np.array([n]), cap=OVERALL_BINS)[0])
    assert bins == OVERALL_BINS
    binned = quantile_bins(order=order, score_sorted=score[order], bins=bins)
    pos = np.bincount(binned[y == 1], minlength=bins).astype(float)
    neg = np.bincount(binned[y == 0], minlength=bins).astype(float)
    exact = ROC_AUC.fn(y_true=y, y_score=score)
    assert abs(float(auc_from_histograms(pos, neg)) - exact) < 1e-3


def test_normal_interval_and_p_value_agree() -> None:
    low, _ = normal_interval(delta=np.array([0.02]), se=np.array([0.01]), confidence=0.95)
    assert low[0] == pytest.approx(0.02 - 1.959964 * 0.01, abs=1e-6)
    p = normal_p_value(delta=np.array([0.02, 0.0, 0.01]), se=np.array([0.01, 0.0, 0.0]))
    assert p[0] == pytest.approx(0.0455, abs=1e-4)
    assert p[1] == 1.0  # identical models: no evidence of a difference
    assert p[2] == 0.0
    # The interval excludes zero exactly when p < 1 - confidence.
    assert (low[0] > 0) == (p[0] < 0.05)


P_VALUES = np.array([0.01, 0.04, 0.03, 0.005])


@pytest.mark.parametrize(
    ("adjust", "expected"),
    [
        (holm, [0.03, 0.06, 0.06, 0.02]),
        (benjamini_hochberg, [0.02, 0.04, 0.04, 0.02]),
    ],
    ids=["holm steps down", "benjamini-hochberg steps up"],
)
def test_adjusted_p_values_match_hand_computation(adjust: Any, expected: list[float]) -> None:
    np.testing.assert_allclose(adjust(P_VALUES), expected)


@pytest.mark.parametrize(
    ("method", "rejected", "expected"),
    [
        (CorrectionMethod.HOLM, 3, 1 - 0.05 / 10),
        (CorrectionMethod.BENJAMINI_HOCHBERG, 0, 1 - 0.05 / 10),
        (CorrectionMethod.BENJAMINI_HOCHBERG, 4, 1 - 4 * 0.05 / 10),
    ],
    ids=[
        "holm draws segment intervals at the bonferroni level",
        "benjamini-hochberg with no rejection falls back to bonferroni",
        "benjamini-hochberg uses the false-coverage-rate level",
    ],
)
def test_segment_interval_level_follows_the_correction(
    method: CorrectionMethod, rejected: int, expected: float
) -> None:
    level = interval_confidence(confidence=0.95, tests=10, rejected=rejected, method=method)
    assert level == pytest.approx(expected)
