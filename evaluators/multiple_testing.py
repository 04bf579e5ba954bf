"""Multiple-testing control across segments: adjusted p-values and matching interval levels."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from evaluators.policy import CorrectionMethod

FloatArray = npt.NDArray[np.float64]


def holm(p_values: npt.NDArray[Any]) -> FloatArray:
    """Holm's step-down adjusted p-values (family-wise error control)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def benjamini_hochberg(p_values: npt.NDArray[Any]) -> FloatArray:
    """Benjamini–Hochberg step-up adjusted p-values (false discovery rate control)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = m * p[order] / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def adjust(p_values: npt.NDArray[Any], *, method: CorrectionMethod) -> FloatArray:
    """Adjusted p-values for the policy's correction."""
    if method is CorrectionMethod.HOLM:
        return holm(p_values)
    return benjamini_hochberg(p_values)


def interval_confidence(
    *, confidence: float, tests: int, rejected: int, method: CorrectionMethod
) -> float:
    """The level at which segment intervals are drawn so they agree with the correction.

    Holm: Bonferroni level 1 - α/m (simultaneous coverage; an interval that excludes zero
    implies a Holm rejection). Benjamini–Hochberg: the false-coverage-rate level of
    Benjamini & Yekutieli (2005), 1 - Rα/m with R rejections (Bonferroni when R = 0).
    """
    alpha = 1.0 - confidence
    tests = max(tests, 1)
    if method is CorrectionMethod.HOLM or rejected == 0:
        return 1.0 - alpha / tests
    return 1.0 - rejected * alpha / tests


def describe(*, method: CorrectionMethod, confidence: float, tests: int, level: float) -> str:
    """One sentence for StatisticsInfo.correction."""
    alpha = 1.0 - confidence
    if method is CorrectionMethod.HOLM:
        how = f"Holm across {tests} segment comparisons (family-wise error {alpha:g})"
        widen = f"segment intervals at the Bonferroni level {level:.4%}"
    else:
        how = (
            f"Benjamini–Hochberg across {tests} segment comparisons "
            f"(false discovery rate {alpha:g})"
        )
        widen = (
            f"segment intervals at the false-coverage-rate level {level:.4%} (Benjamini–Yekutieli)"
        )
    return f"{how}; {widen}; a segment is flagged only if its adjusted p < {alpha:g} too"
