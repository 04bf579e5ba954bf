"""Calibration: ECE both ways, reliability curve, Brier, threshold shifts and the tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from evaluators.policy import CalibrationPolicy
from evaluators.statistics.calibration import calibration_section, calibration_stats

RNG = np.random.default_rng(4)
N = 5000
P = RNG.random(N)
Y = (RNG.random(N) < P).astype(np.int64)  # calibrated by construction


def test_reliability_curve_and_brier_agree_with_scikit_learn() -> None:
    found = calibration_stats(y_true=Y, probability=P, bins=10)
    observed, predicted = calibration_curve(Y, P, n_bins=10, strategy="uniform")
    np.testing.assert_allclose([b.observed_rate for b in found.reliability], observed)
    np.testing.assert_allclose([b.mean_predicted for b in found.reliability], predicted)
    assert sum(b.count for b in found.reliability) == N
    assert found.brier == pytest.approx(brier_score_loss(Y, P), abs=1e-12)


def test_ece_is_the_count_weighted_gap_between_predicted_and_observed() -> None:
    found = calibration_stats(y_true=Y, probability=P, bins=10)
    expected = sum(b.count / N * abs(b.mean_predicted - b.observed_rate) for b in found.reliability)
    assert found.ece_equal_width == pytest.approx(expected, abs=1e-12)
    assert found.ece_equal_width < 0.03 and found.ece_equal_mass < 0.03


def test_equal_mass_bins_hold_the_same_number_of_rows() -> None:
    # Probabilities clustered near 0 leave most equal-width bins empty; equal-mass bins do not.
    p = RNG.random(N) ** 6
    y = (RNG.random(N) < np.minimum(1, 2 * p)).astype(np.int64)  # under-confident: observed 2x
    found = calibration_stats(y_true=y, probability=p, bins=10)
    order = np.argsort(p, kind="stable")
    chunks = np.array_split(order, 10)
    expected = sum(len(c) / N * abs(p[c].mean() - y[c].mean()) for c in chunks)
    assert found.ece_equal_mass == pytest.approx(expected, abs=1e-12)


def test_an_overconfident_candidate_exceeds_the_ece_tolerance() -> None:
    sharpened = np.clip(P + 0.3 * (P - 0.5) * 2, 0, 1)
    section = calibration_section(
        y_true=Y, candidate=sharpened, baseline=P, policy=CalibrationPolicy(thresholds=[0.9])
    )
    assert section.ece_delta > 0.02
    assert not section.within_tolerance


@pytest.mark.parametrize(
    ("shift", "within"),
    [(0.0, True), (0.01, True), (0.2, False)],
    ids=["same scores cross nothing", "a tiny shift stays within", "a big shift crosses too many"],
)
def test_threshold_shift_counts_rows_on_different_sides(shift: float, within: bool) -> None:
    section = calibration_section(
        y_true=Y,
        candidate=np.clip(P + shift, 0, 1),
        baseline=P,
        policy=CalibrationPolicy(thresholds=[0.3, 0.5], max_ece_increase=1.0),
    )
    for found in section.threshold_shifts:
        t = found.threshold
        assert found.share_above_baseline == pytest.approx((t <= P).mean())
        assert found.share_above_candidate == pytest.approx((np.clip(P + shift, 0, 1) >= t).mean())
        assert found.share_crossing == pytest.approx(
            ((t <= P) != (np.clip(P + shift, 0, 1) >= t)).mean()
        )
    assert section.within_tolerance is within
