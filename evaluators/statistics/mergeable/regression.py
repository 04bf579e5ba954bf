"""Regression metrics (MAE, RMSE, R²) from exact sums that merge by addition.

Per (segment, hashed bootstrap group): the rows and the exact sums (wide fixed point,
`exact.py`) of y, y² and each model's |error| and error². A metric's point comes from the merged
totals with one rounding at the end, so it is the same whatever the partitioning; replicates
reweigh the merged groups (`HashedPoisson.group_weights`), identical for 1, 3 or 7 partitions.

R²'s total sum of squares is Σy² − (Σy)²/n taken exactly from the exact sums, so beside the
local engine (which centres y on its mean before squaring) it differs only by the rounding of
each row's y², relatively (1 + mean²/variance) × 1.1e-16.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluators.statistics.mergeable.exact import (
    WIDE_FRACTION_BITS,
    grouped_wide_fixed_sum,
    limb_totals,
    wide_to_float,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]

METRICS = ("mae", "rmse", "r2")
# Term columns: the target's, then per model (candidate, baseline) |error| and error².
_Y, _Y2 = 0, 1
_WIDTH = 6


def _abs_error(model: int) -> int:
    return 2 + 2 * model


def _squared_error(model: int) -> int:
    return 3 + 2 * model


def checked_targets(prediction: AnyArray, target: AnyArray) -> tuple[FloatArray, FloatArray]:
    """Finite float64 predictions and targets of equal length."""
    values = np.asarray(prediction, dtype=np.float64)
    truth = np.asarray(target, dtype=np.float64)
    if values.ndim != 1 or truth.shape != values.shape:
        raise ValueError("predictions and targets must be 1-d arrays of equal length")
    if not (np.isfinite(values).all() and np.isfinite(truth).all()):
        raise ValueError("predictions or targets contain NaN or infinite values")
    return values, truth


@dataclass(frozen=True)
class RegressionSums:
    """Rows and exact term sums per (segment, bootstrap group)."""

    rows: IntArray  # (k, groups)
    limbs: IntArray  # (k, groups, 6 terms, WIDE_LIMBS)

    def __add__(self, other: RegressionSums) -> RegressionSums:
        return RegressionSums(self.rows + other.rows, self.limbs + other.limbs)

    def points(self, metric: str) -> FloatArray:
        """(k, 2) the metric per segment, candidate and baseline; NaN for an empty segment."""
        n = self.rows.sum(axis=1)
        totals = limb_totals(self.limbs.sum(axis=1))  # (k, 6) exact, units 2**-64
        unit = Fraction(1, 1 << WIDE_FRACTION_BITS)
        out = np.full((n.shape[0], 2), np.nan)
        for s in range(n.shape[0]):
            rows = int(n[s])
            if rows == 0:
                continue
            y, y2 = totals[s, _Y] * unit, totals[s, _Y2] * unit
            for model in (0, 1):
                absolute = totals[s, _abs_error(model)] * unit
                squared = totals[s, _squared_error(model)] * unit
                out[s, model] = _finish(metric, rows, y, y2, absolute, squared)
        return out

    def replicates(self, metric: str, weights: IntArray) -> FloatArray:
        """(replicates, k, 2) the metric in each bootstrap replicate."""
        rows = np.asarray(weights @ self.rows.T, dtype=np.float64)  # (r, k)
        sums = np.einsum("rg,kgw->rkw", weights.astype(np.float64), wide_to_float(self.limbs))
        out = np.empty((*rows.shape, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            for model in (0, 1):
                out[..., model] = _finish(
                    metric,
                    rows,
                    sums[..., _Y],
                    sums[..., _Y2],
                    sums[..., _abs_error(model)],
                    sums[..., _squared_error(model)],
                )
        return out


def _finish(metric: str, rows: Any, y: Any, y2: Any, absolute: Any, squared: Any) -> Any:
    """One metric from sums: exact Fractions (points) or float arrays (replicates)."""
    if metric == "mae":
        return _real(absolute / rows)
    if metric == "rmse":
        return np.sqrt(_real(squared / rows))
    if metric == "r2":
        total = y2 - y * y / rows
        return _real(1 - squared / total) if _nonzero(total) else np.nan
    raise ValueError(f"{metric} is not a regression metric of the mergeable sums")


def _real(value: Any) -> Any:
    return float(value) if isinstance(value, Fraction) else value


def _nonzero(total: Any) -> bool:
    # Arrays divide to inf/NaN as the local engine's float sums do; a Fraction cannot.
    return not isinstance(total, Fraction) or total != 0


def regression_sums(
    *,
    label: AnyArray,
    candidate: AnyArray,
    baseline: AnyArray,
    codes: AnyArray | None = None,
    n_segments: int = 1,
    group: IntArray | None = None,
    groups: int = 1,
) -> RegressionSums:
    """One partition's sums of the targets `label` (codes None: one segment; group None: one
    bootstrap group)."""
    cand, truth = checked_targets(candidate, label)
    base, _ = checked_targets(baseline, label)
    n = truth.shape[0]
    key = np.zeros(n, np.int64) if codes is None else np.asarray(codes, np.int64)
    if group is not None:
        key = key * groups + group
    cells = n_segments * groups
    terms: list[FloatArray] = [truth, truth * truth]
    for prediction in (cand, base):
        error = truth - prediction
        terms += [np.abs(error), error * error]
    limbs = np.stack([grouped_wide_fixed_sum(key, t, cells) for t in terms], axis=1)
    return RegressionSums(
        rows=np.bincount(key, minlength=cells).astype(np.int64).reshape(n_segments, groups),
        limbs=limbs.reshape(n_segments, groups, _WIDTH, -1),
    )
