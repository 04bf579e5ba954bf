"""Input drift: a reference profile of the training data, and PSI (judged) and KS (reported)
of production traffic against it.

The profile is small JSON (quantile bins and a CDF outline per numeric feature, category shares
per categorical one), so it can ship in a model directory as `reference_profile.json`; without
one it is derived from the benchmark frame. Both paths give the same numbers because drift is
always computed from the profile, never from the raw reference rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import special  # kolmogorov: the KS tail without scipy.stats' 1.5 s import

FloatArray = npt.NDArray[np.float64]

PROFILE_FILE = "reference_profile.json"
PROFILE_VERSION = 1  # the `version` field; raise it when the format changes
# Bin shares are floored before the log ratio: an empty bin on one side would make PSI infinite.
# 1e-4 is the common choice; it caps one empty bin's contribution at about share·ln(share/1e-4).
SHARE_FLOOR = 1e-4
# A numeric feature takes ~8 KB of JSON at 101 outline points (~21 KB at monitoring's 257), a
# categorical one less; anything bigger than this is not a profile.
MAX_PROFILE_BYTES = 4 * 1024 * 1024
# Points of the reference CDF kept per numeric feature: KS is exact at these points and within
# one step (1/(CDF_POINTS-1) of the mass) in between.
CDF_POINTS = 101
# Monitoring asks for a finer outline (evaluators/statistics/drift_tests.py): KS and Wasserstein
# from the profile are then bounded to within one 1/256 step of the raw-sample values.
MONITORING_CDF_POINTS = 257


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_shares(values: list[float], total: list[float]) -> None:
    """Every share in [0, 1] and the distribution summing to 1: a profile cannot be tuned to
    hide drift by shares that are not a distribution."""
    if any(not 0 <= v <= 1 for v in values):
        raise ValueError("shares must be between 0 and 1")
    if abs(math.fsum(total) - 1) > 1e-6:
        raise ValueError("shares must sum to 1")


class NumericProfile(_Frozen):
    """Bins between reference quantiles (`edges`, increasing), each bin's reference share
    (len(edges) + 1 of them, values equal to an edge fall in the bin above it), the share of
    missing values, and the reference CDF at up to CDF_POINTS values: F(x) in `cdf_at` and
    F(x⁻) in `cdf_below`."""

    kind: Literal["numeric"] = "numeric"
    edges: list[float]
    shares: list[float]
    missing_share: float = Field(ge=0, le=1)
    cdf_points: list[float]
    cdf_at: list[float]
    cdf_below: list[float]
    finite_rows: int = Field(ge=0)
    # Optional (profiles written before monitoring lack them; then Wasserstein is not measured):
    # the integral of the reference CDF over each interval between consecutive cdf_points, and
    # the mean and standard deviation (ddof 0) of the finite values.
    cdf_area: list[float] | None = None
    mean: float | None = None
    std: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> NumericProfile:
        edges, points = np.asarray(self.edges), np.asarray(self.cdf_points)
        if len(self.shares) != len(self.edges) + 1:
            raise ValueError("a numeric profile needs one more share than edges")
        if not (len(points) == len(self.cdf_at) == len(self.cdf_below)):
            raise ValueError("cdf_points, cdf_at and cdf_below must have the same length")
        if np.any(np.diff(edges) <= 0) or np.any(np.diff(points) <= 0):
            raise ValueError("edges and cdf_points must be strictly increasing")
        if not np.all(np.isfinite(edges)) or not np.all(np.isfinite(points)):
            raise ValueError("edges and cdf_points must be finite")
        _check_shares(
            [*self.shares, *self.cdf_at, *self.cdf_below], [*self.shares, self.missing_share]
        )
        if self.cdf_area is not None:
            widths = np.diff(points)
            area = np.asarray(self.cdf_area)
            if area.shape != widths.shape or np.any(area < 0) or np.any(area > widths * (1 + 1e-9)):
                raise ValueError("cdf_area needs one area per interval, within the interval")
        return self


class CategoricalProfile(_Frozen):
    """The most frequent categories and their shares; the rest is `other_share`."""

    kind: Literal["categorical"] = "categorical"
    categories: list[str]
    shares: list[float]
    other_share: float = Field(ge=0, le=1)
    missing_share: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _consistent(self) -> CategoricalProfile:
        if len(self.shares) != len(self.categories) or len(set(self.categories)) != len(
            self.categories
        ):
            raise ValueError("a categorical profile needs one share per distinct category")
        _check_shares(self.shares, [*self.shares, self.other_share, self.missing_share])
        return self


FeatureProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class ReferenceProfile(_Frozen):
    """What the model was trained (or benchmarked) on, feature by feature."""

    version: Literal[1] = 1
    rows: int = Field(ge=1)
    features: dict[str, FeatureProfile]

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        """Parse a `reference_profile.json`; refused when over MAX_PROFILE_BYTES or invalid
        (pydantic's ValidationError, a ValueError)."""
        if len(text) > MAX_PROFILE_BYTES:
            raise ValueError(f"{PROFILE_FILE} is larger than {MAX_PROFILE_BYTES:,} bytes")
        return cls.model_validate_json(text)


@dataclass(frozen=True)
class FeatureDrift:
    """One feature of production traffic against the reference. KS is for numeric features."""

    feature: str
    kind: Literal["numeric", "categorical"]
    rows: int
    psi: float
    ks: float | None
    ks_p_value: float | None
    missing_share: float


@dataclass(frozen=True)
class CdfOutline:
    """An empirical CDF read at fixed points p_0 < … < p_{K-1}, exactly: F(p) (`at`), F(p⁻)
    (`below`), ∫F over each [p_j, p_{j+1}] (`area`), and the mass outside [p_0, p_{K-1}] as
    ∫_{-∞}^{p_0} F (`tail_low`) and ∫_{p_{K-1}}^{∞} (1 - F) (`tail_high`). One binning pass
    (searchsorted + bincount), no sort: this is what makes monitoring 1M rows fast."""

    at: FloatArray
    below: FloatArray
    area: FloatArray
    tail_low: float
    tail_high: float


# Equal-width buckets over [p_0, p_{K-1}] that find each value's bin in a table instead of a
# binary search (twice as fast on 1M values); used when no bucket holds more than a few points.
LOOKUP_BUCKETS = 65_536
LOOKUP_MAX_STEPS = 3


def bins_of(points: FloatArray, values: FloatArray) -> npt.NDArray[np.intp]:
    """`np.searchsorted(points, values, side="right")`, exactly: each value's bin is looked up
    in an equal-width table, walked up past the few points its bucket holds, and every result
    is verified against its two neighbouring points (the rare value a rounding put in the next
    bucket is searched for properly). Points far from uniform fall back to the search."""
    k = points.shape[0]
    span = float(points[-1] - points[0]) if k else 0.0
    # Against a few points (a count feature) the binary search is short and wins.
    if k < 64 or values.shape[0] < 10_000 or not math.isfinite(span) or span <= 0:
        return np.searchsorted(points, values, side="right")
    scale = LOOKUP_BUCKETS / span
    starts = np.searchsorted(points, points[0] + np.arange(LOOKUP_BUCKETS + 1) / scale, "right")
    if int(np.max(np.diff(starts))) > LOOKUP_MAX_STEPS:
        return np.searchsorted(points, values, side="right")
    bucket = np.clip((values - points[0]) * scale, -1, LOOKUP_BUCKETS).astype(np.intp)
    found = np.where(values < points[0], 0, starts[np.maximum(bucket, 0)])
    padded = np.append(points, np.inf)  # padded[j]: the point that ends bin j
    for _ in range(LOOKUP_MAX_STEPS):
        found += values >= padded[found]
    floor = np.append(-np.inf, points)  # floor[j]: the point that starts bin j
    wrong = (values < floor[found]) | (values >= padded[found])
    if wrong.any():
        found[wrong] = np.searchsorted(points, values[wrong], side="right")
    return found


def cdf_outline(points: FloatArray, finite: FloatArray) -> CdfOutline:
    """The outline of the finite values' empirical CDF at `points` (strictly increasing)."""
    k, m = points.shape[0], finite.shape[0]
    bin_of = bins_of(points, finite)  # j + 1: p_j <= v < p_{j+1}
    counts = np.bincount(bin_of, minlength=k + 1).astype(np.float64)
    sums = np.bincount(bin_of, weights=finite, minlength=k + 1)
    on_point = finite == points[np.maximum(bin_of - 1, 0)]
    on_point &= bin_of > 0
    equal = np.bincount(bin_of[on_point] - 1, minlength=k).astype(np.float64)
    below = np.cumsum(counts)[:k]
    at = below + equal
    # Inside the open interval (p_j, p_{j+1}): F = F(p_j) + (values passed so far) / m, so
    # ∫F = F(p_j)·w + Σ (p_{j+1} - v) / m over the values strictly inside.
    inside = counts[1:k] - equal[:-1]
    inside_sum = sums[1:k] - equal[:-1] * points[:-1]
    widths = np.diff(points)
    area = (at[:-1] * widths + inside * points[1:] - inside_sum) / m
    tail_low = (counts[0] * points[0] - sums[0]) / m
    tail_high = (sums[k] - counts[k] * points[-1]) / m
    return CdfOutline(
        at=at / m,
        below=below / m,
        area=np.maximum(area, 0.0),
        tail_low=max(float(tail_low), 0.0),
        tail_high=max(float(tail_high), 0.0),
    )


def _numeric_profile(values: FloatArray, *, bins: int, points: int) -> NumericProfile:
    n = values.shape[0]
    finite = np.sort(values[np.isfinite(values)])
    m = finite.shape[0]
    if m == 0:
        return NumericProfile(
            edges=[],
            shares=[1.0 if n == 0 else 0.0],
            missing_share=1.0 if n else 0.0,
            cdf_points=[],
            cdf_at=[],
            cdf_below=[],
            finite_rows=0,
        )
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    # The PSI edges are among the outline points (same probabilities, same quantiles), so a
    # monitoring window bins each value once for PSI, KS and Wasserstein together.
    probabilities = np.union1d(np.linspace(0, 1, points), np.linspace(0, 1, bins + 1)[1:-1])
    grid = np.unique(np.quantile(finite, probabilities))
    outline = cdf_outline(grid, finite)
    return NumericProfile(
        edges=edges.tolist(),
        shares=(counts / n).tolist(),
        missing_share=(n - m) / n,
        cdf_points=grid.tolist(),
        cdf_at=(np.searchsorted(finite, grid, side="right") / m).tolist(),
        cdf_below=(np.searchsorted(finite, grid, side="left") / m).tolist(),
        finite_rows=m,
        cdf_area=outline.area.tolist(),
        mean=float(np.mean(finite)),
        std=float(np.std(finite)),
    )


def _categorical_profile(values: pd.Series[Any], *, max_categories: int) -> CategoricalProfile:
    n = len(values)
    counts = values.dropna().astype(str).value_counts(sort=True)
    # Ties at the cut are broken by name, so the same data always keeps the same categories.
    ordered = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    kept = ordered[:max_categories]
    kept_total = sum(int(count) for _, count in kept)
    present = int(counts.sum())
    return CategoricalProfile(
        categories=[str(name) for name, _ in kept],
        shares=[int(count) / n for _, count in kept] if n else [],
        other_share=(present - kept_total) / n if n else 0.0,
        missing_share=(n - present) / n if n else 0.0,
    )


def _is_numeric(values: pd.Series[Any]) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def build_profile(
    frame: pd.DataFrame,
    *,
    columns: list[str],
    bins: int = 10,
    max_categories: int = 50,
    cdf_points: int = CDF_POINTS,
) -> ReferenceProfile:
    """Profile `columns` of the reference frame: numeric dtypes get quantile bins and a CDF
    outline at `cdf_points` quantiles, the rest category shares."""
    if len(frame) == 0:
        raise ValueError("the reference frame has no rows")
    features: dict[str, NumericProfile | CategoricalProfile] = {}
    for column in columns:
        values = frame[column]
        if _is_numeric(values):
            array = values.to_numpy(dtype=np.float64, na_value=np.nan)
            features[column] = _numeric_profile(array, bins=bins, points=cdf_points)
        else:
            features[column] = _categorical_profile(values, max_categories=max_categories)
    return ReferenceProfile(rows=len(frame), features=features)


def psi(expected: FloatArray, actual: FloatArray) -> float:
    """Population stability index Σ (a - e)·ln(a / e) over bins, shares floored at SHARE_FLOOR."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), SHARE_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), SHARE_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _ks(profile: NumericProfile, finite_sorted: FloatArray) -> tuple[float | None, float | None]:
    m = finite_sorted.shape[0]
    if m == 0 or profile.finite_rows == 0 or not profile.cdf_points:
        return None, None
    points = np.asarray(profile.cdf_points)
    at = np.searchsorted(finite_sorted, points, side="right") / m
    below = np.searchsorted(finite_sorted, points, side="left") / m
    statistic = float(
        max(
            np.max(np.abs(at - np.asarray(profile.cdf_at))),
            np.max(np.abs(below - np.asarray(profile.cdf_below))),
        )
    )
    n = profile.finite_rows
    # Asymptotic two-sample tail (Smirnov): P(D > d) ≈ K(d·√(nm/(n+m))).
    p_value = float(special.kolmogorov(statistic * math.sqrt(n * m / (n + m))))
    return statistic, p_value


def numeric_drift(feature: str, profile: NumericProfile, values: FloatArray) -> FeatureDrift:
    n = values.shape[0]
    finite_mask = np.isfinite(values)
    finite = np.sort(values[finite_mask])
    edges = np.asarray(profile.edges, dtype=np.float64)
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    missing = (n - finite.shape[0]) / n if n else 0.0
    actual = np.append(counts / n if n else counts * 0.0, missing)
    expected = np.append(np.asarray(profile.shares), profile.missing_share)
    statistic, p_value = _ks(profile, finite)
    return FeatureDrift(
        feature=feature,
        kind="numeric",
        rows=n,
        psi=psi(expected, actual),
        ks=statistic,
        ks_p_value=p_value,
        missing_share=missing,
    )


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def categorical_drift(
    feature: str, profile: CategoricalProfile, values: pd.Series[Any]
) -> FeatureDrift:
    n = len(values)
    missing_mask = values.isna().to_numpy()
    codes = pd.Index(profile.categories, dtype=object).get_indexer(
        values.astype(object).where(~missing_mask, None).map(_text)
    )
    k = len(profile.categories)
    # Known categories keep their code; unseen ones go to "other" (k), missing ones to k + 1.
    cell = np.where(codes >= 0, codes, np.where(missing_mask, k + 1, k))
    counts = np.bincount(cell, minlength=k + 2)
    actual = np.asarray(counts / n if n else counts * 0.0, dtype=np.float64)
    expected = np.asarray([*profile.shares, profile.other_share, profile.missing_share])
    return FeatureDrift(
        feature=feature,
        kind="categorical",
        rows=n,
        psi=psi(expected, actual),
        ks=None,
        ks_p_value=None,
        missing_share=float(actual[k + 1]),
    )


def reference_profile(
    text: str | bytes | None,
    *,
    benchmark: pd.DataFrame | None,
    columns: list[str],
    bins: int = 10,
    max_categories: int = 50,
) -> ReferenceProfile | None:
    """The model directory's `reference_profile.json` when it has one, else a profile of the
    benchmark frame; None when there is neither (drift is then not measured).

    A shipped profile comes with the candidate, so it is the author's description of the
    training data: validated and bounded, and shown as such; the benchmark-derived profile is
    pinned by the base branch's policy.
    """
    if text is not None:
        return ReferenceProfile.from_json(text)
    if benchmark is None or len(benchmark) == 0:
        return None
    present = [column for column in columns if column in benchmark.columns]
    return build_profile(benchmark, columns=present, bins=bins, max_categories=max_categories)


def feature_drift(profile: ReferenceProfile, traffic: pd.DataFrame) -> list[FeatureDrift]:
    """PSI (and KS for numeric features) of every profiled feature; a feature absent from the
    traffic counts as missing on every row, so it shows as drift rather than vanishing."""
    found: list[FeatureDrift] = []
    n = len(traffic)
    for feature, spec in profile.features.items():
        column = traffic[feature] if feature in traffic.columns else None
        if isinstance(spec, NumericProfile):
            if column is None:
                values = np.full(n, np.nan)
            else:
                values = pd.to_numeric(column, errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
            found.append(numeric_drift(feature, spec, values))
        else:
            series = column if column is not None else pd.Series([None] * n, dtype="object")
            found.append(categorical_drift(feature, spec, series))
    return found
