"""Multiple-testing control across segments: regression p-values, Holm / Benjamini–Hochberg
adjusted p-values and flags, and the simultaneous interval level that goes with them."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special  # ndtr is scipy.stats.norm.cdf without its 1.5 s import

from evaluators.policy import CorrectionMethod

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def regression_p_values(
    *, gain: npt.NDArray[Any], se: npt.NDArray[Any], tolerance: float
) -> FloatArray:
    """p-values of H0 'not worse than -tolerance' (gain ≥ -tolerance), one per test.

    p = min(1, 2·Φ((gain + tolerance) / se)): the directional two-sided test, so an unadjusted
    two-sided interval at level 1-α lies wholly below -tolerance exactly when p < α (and for
    tolerance 0 it is the usual two-sided p of a worse model). Undefined SEs give p = 1.
    """
    g = np.asarray(gain, dtype=np.float64) + tolerance
    s = np.asarray(se, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(s > 0, g / np.where(s > 0, s, 1.0), np.where(g < 0, -np.inf, np.inf))
    p = np.minimum(1.0, 2 * special.ndtr(z))
    return np.asarray(np.where(np.isfinite(g) & ~np.isnan(s), p, 1.0), dtype=np.float64)


def holm(p_values: npt.NDArray[Any]) -> FloatArray:
    """Holm's step-down adjusted p-values (family-wise error control).

    Sorted ascending, the i-th smallest (0-based) is multiplied by m - i, and the running
    maximum keeps the adjusted values monotone; hypotheses with adjusted p < α are rejected,
    which is exactly Holm's procedure of stopping at the first p_(i) ≥ α / (m - i).
    """
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


def flags(p_values: npt.NDArray[Any], *, method: CorrectionMethod, alpha: float) -> BoolArray:
    """Which hypotheses the correction rejects at level α: adjusted p < α."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(adjust(p, method=method) < alpha)


def interval_confidence(
    *, confidence: float, tests: int, rejected: int, method: CorrectionMethod
) -> float:
    """The level of the adjusted segment intervals shown beside the flags.

    Holm: the Bonferroni level 1 - α/m, the simultaneous intervals that go with Holm (one
    lying wholly below -tolerance implies a Holm flag; Holm may flag more). Benjamini–Hochberg:
    the false-coverage-rate level of Benjamini & Yekutieli (2005), 1 - Rα/m with R flags
    (Bonferroni when R = 0).
    """
    alpha = 1.0 - confidence
    tests = max(tests, 1)
    if method is CorrectionMethod.HOLM or rejected == 0:
        return 1.0 - alpha / tests
    return 1.0 - rejected * alpha / tests


def adjusted_interval_label(*, method: CorrectionMethod, level: float, rejected: int) -> str:
    """What the adjusted interval is, in words, for the report data."""
    if method is CorrectionMethod.HOLM or rejected == 0:
        return f"Bonferroni-adjusted simultaneous {_percent(level)} CI"
    return f"Benjamini–Yekutieli false-coverage-rate-adjusted {_percent(level)} CI"


def _percent(level: float) -> str:
    return f"{level * 100:.4f}".rstrip("0").rstrip(".") + "%"


def describe(
    *,
    method: CorrectionMethod,
    confidence: float,
    tests: int,
    level: float,
    rejected: int,
    tolerance: float,
) -> str:
    """One paragraph for StatisticsInfo.correction."""
    alpha = 1.0 - confidence
    name = "Holm's step-down" if method is CorrectionMethod.HOLM else "Benjamini–Hochberg step-up"
    error = "family-wise error" if method is CorrectionMethod.HOLM else "false discovery rate"
    adjusted = adjusted_interval_label(method=method, level=level, rejected=rejected)
    return (
        f"a segment is flagged as regressed when its {name} adjusted p-value across {tests} "
        f"segment comparisons ({error} {alpha:g}) of 'not worse than -{tolerance:g}' is below "
        f"{alpha:g}; segment intervals shown are unadjusted {_percent(confidence)} CIs, and the "
        f"report data also holds the {adjusted} (adjusted_ci_low, adjusted_ci_high); "
        f"auto-promotion also needs every judged segment's one-sided {_percent(confidence)} "
        f"lower bound on the change above -{tolerance:g} (an intersection–union test, so no "
        "adjustment is needed)"
    )
