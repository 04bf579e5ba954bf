"""Drift tests for production monitoring: a registry of pure statistics, and the fast path that
measures a window of traffic against the training reference profile.

Two layers, both pure (arrays in, numbers out):

- **Raw-sample statistics** (`REGISTRY`): PSI, Jensen-Shannon distance, normalised Wasserstein
  and the two-sample KS statistic, each with a declared reading (effect size or supporting
  evidence, bounds, symmetry, scale) that tests/test_drift_tests.py checks for every entry,
  and each equal to scipy's reference (`jensenshannon`, `wasserstein_distance`, `ks_2samp`,
  `rel_entr`) to 1e-9.
- **Against a profile** (`window_drift`): what monitoring runs every interval. The reference is
  the `ReferenceProfile` shadow already uses (evaluators/statistics/drift.py), not raw training
  rows. PSI and Jensen-Shannon are exact on the profile's bins and categories. KS and
  Wasserstein need the reference CDF between its outline points, which the profile does not
  keep, so they come as an `Estimate` with bounds that provably contain the raw-sample value
  (tested against scipy). KS: exact at the outline points, the bounds within about one outline
  step (1/256 of the mass with `MONITORING_CDF_POINTS`). Wasserstein: the value is the lower
  bound, exact in every interval where the two CDFs do not cross; where they cross, the
  reference's shape inside the interval is unknown and the upper bound is loose (up to ~0.06σ
  for a heavy tail), but the value stayed within 0.005σ of scipy over normal, tied, count and
  heavy-tailed data, twenty times inside the 0.1σ threshold.

Effect sizes decide, p-values only support: at 50k rows KS calls a 0.05σ shift "significant"
(p ≈ 1e-10) while PSI is 0.003, so volume alone must never raise an alarm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from evaluators.statistics.drift import (
    MONITORING_CDF_POINTS,
    CategoricalProfile,
    CdfOutline,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    cdf_outline,
    psi,
)

AnyArray = npt.NDArray[Any]
FloatArray = npt.NDArray[np.float64]
Kind = Literal["numeric", "categorical"]

# Features measured at once: numpy's binning releases the GIL, so two cores help.
MAX_THREADS = 2


# --- raw-sample statistics --------------------------------------------------------------------


def _finite(values: AnyArray) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def ks_statistic(reference: AnyArray, current: AnyArray) -> float:
    """sup_x |F_ref(x) - F_cur(x)| of the two empirical CDFs (scipy's `ks_2samp` statistic)."""
    a, b = np.sort(_finite(reference)), np.sort(_finite(current))
    if a.size == 0 or b.size == 0:
        raise ValueError("KS needs values on both sides")
    both = np.concatenate([a, b])
    gap = (
        np.searchsorted(a, both, side="right") / a.size
        - np.searchsorted(b, both, side="right") / b.size
    )
    return float(np.max(np.abs(gap)))


def ks_p_value(statistic: float, n: int, m: int) -> float:
    """Two-sided p-value of a KS statistic between samples of n and m values, as `ks_2samp`
    computes it with method="asymp" (also its default once a side exceeds 10,000 values):
    the one-sample Kolmogorov distribution at round(nm / (n + m)). Supporting evidence only."""
    from scipy.stats import kstwo  # scipy.stats costs ~1.5 s to import: only when asked

    big, small = max(n, m), min(n, m)
    effective = float(np.round(big * small / (big + small)))
    return float(kstwo.sf(statistic, effective))


def wasserstein(reference: AnyArray, current: AnyArray) -> float:
    """First Wasserstein distance ∫|F_ref - F_cur| dx (scipy's `wasserstein_distance`)."""
    a, b = np.sort(_finite(reference)), np.sort(_finite(current))
    if a.size == 0 or b.size == 0:
        raise ValueError("Wasserstein needs values on both sides")
    both = np.sort(np.concatenate([a, b]))
    widths = np.diff(both)
    fa = np.searchsorted(a, both[:-1], side="right") / a.size
    fb = np.searchsorted(b, both[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * widths))


def normalised_wasserstein(reference: AnyArray, current: AnyArray) -> float:
    """Wasserstein distance in units of the reference's standard deviation: scale-free, so one
    threshold (0.1: a tenth of a standard deviation) reads the same for every feature."""
    spread = float(np.std(_finite(reference)))
    distance = wasserstein(reference, current)
    return 0.0 if distance == 0 else distance / spread if spread > 0 else math.inf


def jensen_shannon(expected: AnyArray, actual: AnyArray) -> float:
    """Jensen-Shannon distance (the square root of the divergence, base 2: in [0, 1]) between
    two distributions given as counts or shares over the same cells (scipy's
    `jensenshannon(p, q, base=2)`)."""
    p = np.asarray(expected, dtype=np.float64)
    q = np.asarray(actual, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    middle = (p + q) / 2

    def kl(x: FloatArray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log(x[mask] / middle[mask])))

    divergence = (kl(p) + kl(q)) / 2 / math.log(2)
    return math.sqrt(max(divergence, 0.0))


def _category_counts(reference: AnyArray, current: AnyArray) -> tuple[FloatArray, FloatArray]:
    """Counts of each side over the union of their categories (missing is a category too)."""
    labels = pd.Series(
        np.concatenate([np.asarray(reference, dtype=object), np.asarray(current, dtype=object)])
    )
    codes, uniques = pd.factorize(labels, sort=True, use_na_sentinel=True)
    codes = np.where(codes >= 0, codes, len(uniques))  # missing: one more category
    size = len(uniques) + 1
    n = len(reference)
    return (
        np.bincount(codes[:n], minlength=size).astype(np.float64),
        np.bincount(codes[n:], minlength=size).astype(np.float64),
    )


def categorical_psi(reference: AnyArray, current: AnyArray) -> float:
    expected, actual = _category_counts(reference, current)
    return psi(expected / expected.sum(), actual / actual.sum())


def categorical_js(reference: AnyArray, current: AnyArray) -> float:
    expected, actual = _category_counts(reference, current)
    return jensen_shannon(expected, actual)


def quantile_edges(reference: AnyArray, *, bins: int = 10) -> FloatArray:
    finite = _finite(reference)
    return np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))


def numeric_psi(reference: AnyArray, current: AnyArray, *, bins: int = 10) -> float:
    """PSI over the reference's quantile bins (as the profile bins them), missing as a bin."""
    edges = quantile_edges(reference, bins=bins)

    def shares(values: AnyArray) -> FloatArray:
        array = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(array)
        cells = np.where(finite, np.searchsorted(edges, array, side="right"), edges.size + 1)
        return np.bincount(cells, minlength=edges.size + 2) / max(array.size, 1)

    return psi(shares(reference), shares(current))


@dataclass(frozen=True)
class DriftTest:
    """One registered statistic and how to read it.

    `effect_size`: judged against a threshold (a p-value never is). `upper`: its largest value
    (math.inf: unbounded). `symmetric`: unchanged when the two samples swap. `scale_free`:
    unchanged when both samples are multiplied by the same positive number.
    """

    name: str
    kind: Kind
    effect_size: bool
    upper: float
    symmetric: bool
    scale_free: bool
    fn: Callable[[AnyArray, AnyArray], float]


REGISTRY: dict[tuple[Kind, str], DriftTest] = {
    (test.kind, test.name): test
    for test in [
        DriftTest("psi", "numeric", True, math.inf, False, True, numeric_psi),
        DriftTest("wasserstein", "numeric", True, math.inf, False, True, normalised_wasserstein),
        DriftTest("ks", "numeric", False, 1.0, True, True, ks_statistic),
        DriftTest("psi", "categorical", True, math.inf, True, True, categorical_psi),
        DriftTest("jensen_shannon", "categorical", True, 1.0, True, True, categorical_js),
    ]
}


def tests_for(kind: Kind) -> list[DriftTest]:
    return [test for (k, _), test in REGISTRY.items() if k == kind]


# --- against a reference profile ---------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A statistic computed from a profile: `value`, and bounds that contain the value the raw
    reference rows would give."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class FeatureTests:
    """One feature of a window against the reference. Numeric features have KS and Wasserstein
    (None when either side has no finite value, or the profile predates monitoring), categorical
    ones Jensen-Shannon and the share of categories the profile does not name. A constant
    reference feature (σ = 0) has no normalised Wasserstein; PSI and the out-of-range share
    still see it move."""

    feature: str
    kind: Kind
    rows: int
    psi: float
    missing_share: float
    js: float | None = None
    # In units of the reference standard deviation; the value is the lower bound, exact where
    # the CDFs do not cross (so identical distributions read ~0, not half the bound).
    wasserstein: Estimate | None = None
    ks: Estimate | None = None
    ks_p_value: float | None = None  # supporting evidence, from ks.value; never judged
    outside_share: float | None = None  # numeric: share outside the reference's [min, max]
    unseen_share: float | None = None  # categorical: share not among the profile's categories


def _ks_estimate(profile: NumericProfile, at: FloatArray, below: FloatArray) -> Estimate:
    ref_at, ref_below = np.asarray(profile.cdf_at), np.asarray(profile.cdf_below)
    # At the outline points both CDFs are exact; between two points each lies between its
    # values at the ends, which bounds the gap from above.
    on_points = float(max(np.max(np.abs(at - ref_at)), np.max(np.abs(below - ref_below))))
    between = 0.0
    if at.size > 1:
        between = float(max(np.max(below[1:] - ref_at[:-1]), np.max(ref_below[1:] - at[:-1])))
    return Estimate(on_points, on_points, max(on_points, between))


def _wasserstein_estimate(
    profile: NumericProfile, points: FloatArray, current: CdfOutline
) -> Estimate | None:
    if profile.cdf_area is None or not profile.std:
        return None
    ref_area = np.asarray(profile.cdf_area)
    ref_lo, ref_hi = np.asarray(profile.cdf_at)[:-1], np.asarray(profile.cdf_below)[1:]
    lo, hi = current.at[:-1], current.below[1:]
    widths = np.diff(points)
    # Where the two CDFs cannot cross inside an interval, ∫|F - G| = |∫F - ∫G| exactly;
    # where they may, it lies between that and what the ends allow.
    exact = np.abs(ref_area - current.area)
    apart = (ref_lo >= hi) | (lo >= ref_hi)
    total = ref_area + current.area
    # Else |F - G| = 2·max(F, G) - (F + G), with max(F, G) at most the larger end value; and
    # |F - G| is at most the widest gap the two ends allow.
    ceiling = np.minimum(
        2 * widths * np.maximum(ref_hi, hi) - total,
        widths * np.maximum(ref_hi - lo, hi - ref_lo),
    )
    upper = np.where(apart, exact, np.maximum(exact, ceiling))
    tails = current.tail_low + current.tail_high
    low, high = float(exact.sum() + tails), float(upper.sum() + tails)
    return Estimate(low / profile.std, low / profile.std, high / profile.std)


def numeric_tests(feature: str, profile: NumericProfile, values: FloatArray) -> FeatureTests:
    n = values.shape[0]
    finite = values[np.isfinite(values)]
    m = finite.shape[0]
    edges = np.asarray(profile.edges, dtype=np.float64)
    points = np.asarray(profile.cdf_points, dtype=np.float64)
    missing = (n - m) / n if n else 0.0
    expected = np.append(np.asarray(profile.shares), profile.missing_share)
    outline = cdf_outline(points, finite) if m and points.size else None
    at_edges = np.searchsorted(points, edges)
    if outline is not None and np.array_equal(points[np.minimum(at_edges, points.size - 1)], edges):
        # Edges among the outline points (profiles built here): the bins come from the outline.
        below_edges = np.concatenate([[0.0], outline.below[at_edges], [1.0]])
        counts = np.diff(below_edges) * m
    else:
        counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    actual = np.append(counts / n if n else counts * 0.0, missing)
    tests = FeatureTests(
        feature=feature, kind="numeric", rows=n, psi=psi(expected, actual), missing_share=missing
    )
    if outline is None or profile.finite_rows == 0:
        return tests
    ks = _ks_estimate(profile, outline.at, outline.below)
    outside = float(outline.below[0] + 1 - outline.at[-1]) * m / n
    return FeatureTests(
        feature=feature,
        kind="numeric",
        rows=n,
        psi=tests.psi,
        missing_share=missing,
        wasserstein=_wasserstein_estimate(profile, points, outline),
        ks=ks,
        ks_p_value=ks_p_value(ks.value, profile.finite_rows, m),
        outside_share=outside,
    )


def _profile_cells(profile: CategoricalProfile, values: pd.Series[Any]) -> npt.NDArray[np.int64]:
    """Counts per profile cell: its categories, then "other", then missing. Factorised first,
    so only the distinct values (not every row) are turned into text and looked up."""
    k = len(profile.categories)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    index = pd.Index(profile.categories, dtype=object)
    known = index.get_indexer([str(u) for u in uniques])
    cell_of_unique = np.append(np.where(known >= 0, known, k), k + 1)  # -1 (missing) → k + 1
    per_unique = np.bincount(np.where(codes >= 0, codes, len(uniques)), minlength=len(uniques) + 1)
    return np.bincount(cell_of_unique, weights=per_unique, minlength=k + 2).astype(np.int64)


def categorical_tests(
    feature: str, profile: CategoricalProfile, values: pd.Series[Any]
) -> FeatureTests:
    n = len(values)
    counts = _profile_cells(profile, values).astype(np.float64)
    k = len(profile.categories)
    actual = counts / n if n else counts
    expected = np.asarray([*profile.shares, profile.other_share, profile.missing_share])
    return FeatureTests(
        feature=feature,
        kind="categorical",
        rows=n,
        psi=psi(expected, actual),
        missing_share=float(actual[k + 1]),
        js=jensen_shannon(expected, actual) if n else None,
        unseen_share=float(actual[k]),
    )


def _numeric_values(column: pd.Series[Any] | None, n: int) -> FloatArray:
    if column is None:
        return np.full(n, np.nan)
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        column = pd.to_numeric(column, errors="coerce")
    values: FloatArray = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return values


def window_drift(profile: ReferenceProfile, window: pd.DataFrame) -> list[FeatureTests]:
    """Every profiled feature of one window of traffic against the reference, in the
    profile's order. A feature absent from the window is missing on every row, so it shows as
    drift (and as a schema change in data quality) rather than vanishing."""
    n = len(window)

    def one(item: tuple[str, NumericProfile | CategoricalProfile]) -> FeatureTests:
        feature, spec = item
        column = window[feature] if feature in window.columns else None
        if isinstance(spec, NumericProfile):
            return numeric_tests(feature, spec, _numeric_values(column, n))
        series = column if column is not None else pd.Series([None] * n, dtype="object")
        return categorical_tests(feature, spec, series)

    items = list(profile.features.items())
    if len(items) < 2 or n < 50_000:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=MAX_THREADS) as pool:
        return list(pool.map(one, items))


def score_profile(scores: AnyArray, *, column: str = "score", bins: int = 10) -> ReferenceProfile:
    """A reference profile of a model's scores (its first week in production, or its shadow
    run), for `prediction_drift`."""
    frame = pd.DataFrame({column: np.asarray(scores, dtype=np.float64)})
    return build_profile(frame, columns=[column], bins=bins, cdf_points=MONITORING_CDF_POINTS)


def prediction_drift(
    reference: ReferenceProfile, scores: AnyArray, *, column: str = "score"
) -> FeatureTests:
    """The model's scores in this window against a profile of its own scores (its first week
    in production, or its shadow run): the same tests as a numeric feature."""
    frame = pd.DataFrame({column: np.asarray(scores, dtype=np.float64)})
    [found] = window_drift(
        ReferenceProfile(rows=reference.rows, features={column: reference.features[column]}),
        frame,
    )
    return found


__all__ = [
    "REGISTRY",
    "DriftTest",
    "Estimate",
    "FeatureTests",
    "categorical_js",
    "categorical_psi",
    "categorical_tests",
    "jensen_shannon",
    "ks_p_value",
    "ks_statistic",
    "normalised_wasserstein",
    "numeric_psi",
    "numeric_tests",
    "prediction_drift",
    "score_profile",
    "tests_for",
    "wasserstein",
    "window_drift",
]
