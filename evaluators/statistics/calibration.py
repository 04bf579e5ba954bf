"""Calibration of binary probabilities: ECE (equal width and mass), Brier, reliability, shifts."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from evaluators.policy import CalibrationPolicy
from evaluators.report import CalibrationSection, CalibrationStats, ReliabilityBin, ThresholdShift

FloatArray = npt.NDArray[np.float64]
AnyArray = npt.NDArray[Any]


def _ece(count: FloatArray, predicted: FloatArray, observed: FloatArray) -> float:
    total = count.sum()
    gap = np.abs(predicted - observed)  # sums per bin; |mean_p - mean_y| * count
    return float(gap.sum() / total) if total > 0 else float("nan")


def calibration_stats(
    *,
    y_true: AnyArray,
    probability: AnyArray,
    bins: int,
    order: AnyArray | None = None,
) -> CalibrationStats:
    """One model's calibration. `order` (a stable argsort of the scores) saves a sort.

    Equal-width bins split [0, 1] evenly; equal-mass bins hold n/bins rows each in score order
    (tied scores may straddle two bins). The reliability curve uses the equal-width bins and
    lists non-empty bins only.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    n = y.shape[0]
    scaled = np.multiply(p, bins)
    width_bin = scaled.astype(np.int64)
    np.clip(width_bin, 0, bins - 1, out=width_bin)
    count = np.bincount(width_bin, minlength=bins).astype(np.float64)
    sum_p = np.asarray(np.bincount(width_bin, weights=p, minlength=bins), dtype=np.float64)
    sum_y = np.asarray(np.bincount(width_bin, weights=y, minlength=bins), dtype=np.float64)
    del width_bin
    if order is None:
        order = np.argsort(p, kind="stable")
    # Row i (in score order) is in mass bin i*bins//n: bin b runs from ceil(b*n/bins).
    edges = -((-np.arange(bins + 1, dtype=np.int64) * n) // bins)
    mass_p, mass_y = np.zeros(bins), np.zeros(bins)
    for b in range(bins):  # a bin's rows at a time: no row-length gathers (bins <= 100)
        rows = order[edges[b] : edges[b + 1]]
        mass_p[b] = np.take(p, rows).sum()
        mass_y[b] = np.take(y, rows).sum()
    mass_count = np.diff(edges).astype(np.float64)
    reliability = [
        ReliabilityBin(
            lower=b / bins,
            upper=(b + 1) / bins,
            count=int(count[b]),
            mean_predicted=float(sum_p[b] / count[b]),
            observed_rate=float(sum_y[b] / count[b]),
        )
        for b in np.flatnonzero(count)
    ]
    error = np.subtract(p, y, out=scaled)
    return CalibrationStats(
        ece_equal_width=_ece(count, sum_p, sum_y),
        ece_equal_mass=_ece(mass_count, mass_p, mass_y),
        brier=float(np.dot(error, error) / n) if n else float("nan"),
        reliability=reliability,
    )


def threshold_shift(*, candidate: AnyArray, baseline: AnyArray, threshold: float) -> ThresholdShift:
    """Shares of rows at or above a threshold, and of rows the two models put on different sides."""
    above_candidate = np.asarray(candidate) >= threshold
    above_baseline = np.asarray(baseline) >= threshold
    return ThresholdShift(
        threshold=threshold,
        share_above_candidate=float(above_candidate.mean()),
        share_above_baseline=float(above_baseline.mean()),
        share_crossing=float((above_candidate != above_baseline).mean()),
    )


def calibration_section(
    *,
    y_true: AnyArray,
    candidate: AnyArray,
    baseline: AnyArray,
    policy: CalibrationPolicy,
    candidate_order: AnyArray | None = None,
    baseline_order: AnyArray | None = None,
) -> CalibrationSection:
    """Both models' calibration; within tolerance when the equal-width ECE grows by at most
    `max_ece_increase` and no threshold is crossed by more than `max_threshold_shift` of rows.
    The optional orders (from a stable argsort) only save work."""
    cand = calibration_stats(
        y_true=y_true,
        probability=candidate,
        bins=policy.bins,
        order=candidate_order,
    )
    base = calibration_stats(
        y_true=y_true,
        probability=baseline,
        bins=policy.bins,
        order=baseline_order,
    )
    shifts = [
        threshold_shift(candidate=candidate, baseline=baseline, threshold=t)
        for t in policy.thresholds
    ]
    ece_delta = cand.ece_equal_width - base.ece_equal_width
    within = ece_delta <= policy.max_ece_increase and all(
        shift.share_crossing <= policy.max_threshold_shift for shift in shifts
    )
    return CalibrationSection(
        bins=policy.bins,
        candidate=cand,
        baseline=base,
        ece_delta=ece_delta,
        threshold_shifts=shifts,
        within_tolerance=bool(within),
    )
