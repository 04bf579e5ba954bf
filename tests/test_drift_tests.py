"""Monitoring's drift statistics agree with scipy to 1e-9, every registered one obeys the
shared invariants, and the fast path against a reference profile stays within bounds that
provably contain the raw-sample values."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from evaluators.statistics.drift import (
    MONITORING_CDF_POINTS,
    SHARE_FLOOR,
    NumericProfile,
    ReferenceProfile,
    bins_of,
    build_profile,
)
from evaluators.statistics.drift_tests import (
    REGISTRY,
    DriftTest,
    jensen_shannon,
    ks_p_value,
    ks_statistic,
    numeric_psi,
    prediction_drift,
    quantile_edges,
    score_profile,
    wasserstein,
    window_drift,
)

RNG = np.random.default_rng(11)
NUM_REF = RNG.normal(3.0, 2.0, 3000)
NUM_CUR = RNG.normal(3.4, 2.5, 2000)
CATS = np.array(["free", "pro", "team", "edu"], dtype=object)
CAT_REF = RNG.choice(CATS, 3000, p=[0.5, 0.3, 0.15, 0.05])
CAT_CUR = RNG.choice(CATS, 2000, p=[0.4, 0.3, 0.2, 0.1])
DATA: dict[str, tuple[Any, Any]] = {
    "numeric": (NUM_REF, NUM_CUR),
    "categorical": (CAT_REF, CAT_CUR),
}


def _floored(shares: Any) -> Any:
    return np.maximum(np.asarray(shares, dtype=np.float64), SHARE_FLOOR)


def _scipy_psi(expected: Any, actual: Any) -> float:
    # PSI is the symmetric Kullback-Leibler divergence: KL(a‖e) + KL(e‖a).
    e, a = _floored(expected), _floored(actual)
    return float(np.sum(special.rel_entr(a, e) + special.rel_entr(e, a)))


def _shares_over_union(ref: Any, cur: Any) -> tuple[Any, Any]:
    labels = sorted(set(ref) | set(cur))
    count = lambda x: np.array([np.sum(x == v) for v in labels], dtype=float)  # noqa: E731
    return count(ref) / len(ref), count(cur) / len(cur)


def _numeric_shares(ref: Any, cur: Any) -> tuple[Any, Any]:
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    share = lambda x: np.append(np.histogram(x, np.r_[-np.inf, edges, np.inf])[0] / len(x), 0)  # noqa: E731
    return share(ref), share(cur)


Reference = Callable[[Any, Any], float]
REFERENCES: dict[tuple[str, str], Reference] = {
    ("numeric", "psi"): lambda r, c: _scipy_psi(*_numeric_shares(r, c)),
    ("numeric", "wasserstein"): lambda r, c: stats.wasserstein_distance(r, c) / np.std(r),
    ("numeric", "ks"): lambda r, c: stats.ks_2samp(r, c).statistic,
    ("categorical", "psi"): lambda r, c: _scipy_psi(*_shares_over_union(r, c)),
    ("categorical", "jensen_shannon"): lambda r, c: jensenshannon(
        *_shares_over_union(r, c), base=2
    ),
}


def test_every_registered_drift_test_has_a_scipy_reference() -> None:
    assert set(REFERENCES) == set(REGISTRY)


@pytest.mark.parametrize(
    ("key", "reference"),
    list(REFERENCES.items()),
    ids=[f"{kind} {name} agrees with scipy" for kind, name in REFERENCES],
)
def test_drift_test_agrees_with_scipy(key: tuple[str, str], reference: Reference) -> None:
    ref, cur = DATA[key[0]]
    assert REGISTRY[key].fn(ref, cur) == pytest.approx(reference(ref, cur), abs=1e-9)


@pytest.mark.parametrize(
    "test",
    list(REGISTRY.values()),
    ids=[f"{t.kind} {t.name} obeys the shared invariants" for t in REGISTRY.values()],
)
def test_registered_drift_test_obeys_shared_invariants(test: DriftTest) -> None:
    ref, cur = DATA[test.kind]
    value = test.fn(ref, cur)
    assert 0 <= value <= test.upper
    # Identical samples: no drift at all.
    assert test.fn(ref, ref.copy()) == pytest.approx(0, abs=1e-12)
    # The order of rows means nothing.
    shuffle = np.random.default_rng(2).permutation
    assert test.fn(ref[shuffle(len(ref))], cur[shuffle(len(cur))]) == pytest.approx(
        value, abs=1e-12
    )
    if test.symmetric:
        assert test.fn(cur, ref) == pytest.approx(value, abs=1e-12)
    if test.scale_free and test.kind == "numeric":
        assert test.fn(ref * 1000.0, cur * 1000.0) == pytest.approx(value, rel=1e-9)
        assert test.fn(ref / 7.0, cur / 7.0) == pytest.approx(value, rel=1e-9)
    # A larger shift of the same kind reads as more drift.
    if test.kind == "numeric":
        assert test.fn(ref, cur + 2.0) > value
    # Effect sizes are what thresholds read; only they may be judged.
    assert test.effect_size == (test.name != "ks")


def test_jensen_shannon_is_in_zero_one_and_one_for_disjoint_distributions() -> None:
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0, abs=1e-12)
    assert jensen_shannon([3, 1], [3, 1]) == 0
    p, q = RNG.random(30), RNG.random(30)
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)


@pytest.mark.parametrize(("n", "m"), [(3000, 2000), (20_000, 15_000), (50, 70)])
def test_ks_p_value_matches_ks_2samp_asymptotic(n: int, m: int) -> None:
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=n), rng.normal(0.05, 1, m)
    ours = ks_statistic(a, b)
    exact = stats.ks_2samp(a, b, method="asymp")
    assert ours == pytest.approx(exact.statistic, abs=1e-12)
    assert ks_p_value(ours, n, m) == pytest.approx(exact.pvalue, abs=1e-9, rel=1e-9)
    if max(n, m) > 10_000:  # ks_2samp's default is asymptotic there too
        assert ks_p_value(ours, n, m) == pytest.approx(stats.ks_2samp(a, b).pvalue, rel=1e-9)


def test_wasserstein_agrees_with_scipy_with_ties_and_different_sizes() -> None:
    a = np.round(RNG.exponential(1, 777), 1)
    b = np.round(RNG.exponential(1.3, 1234), 1)
    assert wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), abs=1e-9)


# --- against a reference profile -------------------------------------------------------------

SHAPES: dict[str, Callable[[np.random.Generator, int], Any]] = {
    "normal": lambda g, n: g.normal(size=n),
    "rounded (many ties)": lambda g, n: np.round(g.normal(size=n), 1),
    "counts (60% zeros)": lambda g, n: g.poisson(0.5, n).astype(float),
    "heavy tail": lambda g, n: g.lognormal(0, 1.5, n),
}
SHIFTS = [(1.0, 0.0), (1.0, 0.05), (1.3, 0.4), (0.5, -2.0)]


def _profile(values: Any, column: str = "x") -> ReferenceProfile:
    return build_profile(
        pd.DataFrame({column: values}), columns=[column], cdf_points=MONITORING_CDF_POINTS
    )


@pytest.mark.parametrize("shift", SHIFTS, ids=[f"scale {s} shift {d}" for s, d in SHIFTS])
@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_profile_estimates_bound_the_raw_sample_values(
    shape: str, shift: tuple[float, float]
) -> None:
    """KS and Wasserstein from the profile bracket scipy's raw-sample values, KS within one
    outline step; PSI is exact (the same bins)."""
    rng = np.random.default_rng(len(shape))
    reference = SHAPES[shape](rng, 40_000)
    scale, delta = shift
    current = SHAPES[shape](rng, 25_000) * scale + delta
    [tests] = window_drift(_profile(reference), pd.DataFrame({"x": current}))
    assert tests.ks is not None and tests.wasserstein is not None and tests.ks_p_value is not None
    ks = stats.ks_2samp(reference, current).statistic
    assert tests.ks.low - 1e-12 <= ks <= tests.ks.high + 1e-12
    assert tests.ks.high - tests.ks.low <= 2.5 / (MONITORING_CDF_POINTS - 1)
    w = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert tests.wasserstein.low - 1e-9 <= w <= tests.wasserstein.high + 1e-9
    # The value (the lower bound) is exact where the CDFs do not cross; where they do, the
    # reference's shape inside one outline interval is unknown. Over these shapes it stays
    # within 0.005 standard deviations of scipy, twenty times inside the 0.1 threshold.
    assert tests.wasserstein.value == tests.wasserstein.low
    assert w - tests.wasserstein.value <= 0.005
    assert tests.psi == pytest.approx(numeric_psi(reference, current), abs=1e-9)
    # The p-value is the asymptotic one at the profile's KS: supporting evidence only.
    assert tests.ks_p_value == pytest.approx(ks_p_value(tests.ks.value, 40_000, 25_000))


def test_identical_traffic_reads_as_no_drift_from_the_profile() -> None:
    reference = np.random.default_rng(3).normal(size=30_000)
    [tests] = window_drift(_profile(reference), pd.DataFrame({"x": reference[::-1]}))
    assert tests.psi == pytest.approx(0, abs=1e-12)
    assert tests.ks is not None and tests.ks.value == 0
    assert tests.wasserstein is not None and tests.wasserstein.value == pytest.approx(0, abs=1e-9)
    assert tests.outside_share == 0


def test_categorical_tests_from_the_profile_agree_with_scipy() -> None:
    profile = build_profile(pd.DataFrame({"plan": CAT_REF}), columns=["plan"])
    for dtype in (object, "str", "category"):
        window = pd.DataFrame({"plan": pd.Series(CAT_CUR).astype(dtype)})
        [tests] = window_drift(profile, window)
        p, q = _shares_over_union(CAT_REF, CAT_CUR)
        assert tests.js == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
        assert tests.psi == pytest.approx(_scipy_psi(p, q), abs=1e-9)
        assert tests.unseen_share == 0


def test_unseen_and_missing_categories_are_counted() -> None:
    profile = build_profile(pd.DataFrame({"plan": CAT_REF}), columns=["plan"])
    window = pd.DataFrame({"plan": ["enterprise"] * 100 + [None] * 50 + ["free"] * 850})
    [tests] = window_drift(profile, window)
    assert tests.unseen_share == pytest.approx(0.1)
    assert tests.missing_share == pytest.approx(0.05)


def test_the_extended_profile_survives_json_and_old_profiles_still_load() -> None:
    profile = _profile(NUM_REF)
    again = ReferenceProfile.from_json(profile.to_json())
    assert again == profile
    window = pd.DataFrame({"x": NUM_CUR})
    assert window_drift(again, window) == window_drift(profile, window)
    # A profile written before monitoring (no areas, mean or std): no Wasserstein, the rest works.
    raw = json.loads(build_profile(pd.DataFrame({"x": NUM_REF}), columns=["x"]).to_json())
    for key in ("cdf_area", "mean", "std"):
        raw["features"]["x"].pop(key)
    [old] = window_drift(ReferenceProfile.from_json(json.dumps(raw)), window)
    assert old.wasserstein is None and old.ks is not None and old.psi > 0


def test_a_profile_whose_areas_do_not_fit_its_intervals_is_refused() -> None:
    raw = json.loads(_profile(NUM_REF).to_json())
    raw["features"]["x"]["cdf_area"][3] = 1e6
    with pytest.raises(ValueError, match="cdf_area"):
        ReferenceProfile.from_json(json.dumps(raw))


def test_the_psi_edges_are_outline_points_so_one_binning_serves_all() -> None:
    spec = _profile(NUM_REF).features["x"]
    assert isinstance(spec, NumericProfile)
    assert set(spec.edges) <= set(spec.cdf_points)
    assert spec.edges == quantile_edges(NUM_REF).tolist()


def test_values_outside_the_reference_range_are_counted() -> None:
    reference = np.linspace(0, 1, 1001)
    window = pd.DataFrame({"x": np.r_[np.full(30, -1.0), np.full(20, 2.0), np.full(950, 0.5)]})
    [tests] = window_drift(_profile(reference), window)
    assert tests.outside_share == pytest.approx(0.05)


def test_prediction_drift_is_the_same_test_on_the_score_column() -> None:
    rng = np.random.default_rng(5)
    first_week = special.expit(rng.normal(-1, 1.5, 50_000))
    profile = score_profile(first_week)
    same = prediction_drift(profile, special.expit(rng.normal(-1, 1.5, 20_000)))
    moved = prediction_drift(profile, special.expit(rng.normal(0, 1.5, 20_000)))
    assert same.psi < 0.01 and moved.psi > 0.25
    assert moved.wasserstein is not None and moved.wasserstein.value > 0.25
    [as_feature] = window_drift(profile, pd.DataFrame({"score": first_week[:5000]}))
    assert prediction_drift(profile, first_week[:5000]) == as_feature


def test_a_window_of_a_million_rows_and_twenty_features_is_measured_quickly() -> None:
    """The issue's budget is ≤ 1 s for 1M × 20 on 2 cores (bench/bench_drift.py); here a
    200k-row slice must stay well inside a fifth of it on a shared machine."""
    import time

    rng = np.random.default_rng(0)
    n = 200_000
    columns: dict[str, Any] = {f"n{i}": rng.normal(size=n) for i in range(12)}
    columns |= {f"c{i}": rng.choice([f"v{j}" for j in range(20)], n) for i in range(8)}
    frame = pd.DataFrame(columns)
    profile = build_profile(frame, columns=list(columns), cdf_points=MONITORING_CDF_POINTS)
    window_drift(profile, frame.iloc[:1000])  # warm up (scipy.stats import for the p-value)
    start = time.perf_counter()
    window_drift(profile, frame)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "shape",
    ["normal", "heavy tail", "rounded (many ties)"],
)
def test_the_lookup_table_bins_exactly_as_a_binary_search(shape: str) -> None:
    """The fast binning agrees with np.searchsorted on every value, including values equal to a
    point, a hair either side of one, far outside the range, and shifted traffic."""
    rng = np.random.default_rng(9)
    reference = SHAPES[shape](rng, 100_000)
    points = np.unique(np.quantile(reference, np.linspace(0, 1, MONITORING_CDF_POINTS)))
    values = np.concatenate(
        [
            SHAPES[shape](rng, 50_000) * 1.3 + 0.2,
            points,
            np.nextafter(points, -np.inf),
            np.nextafter(points, np.inf),
            [-1e300, 1e300, points[0] - 1, points[-1] + 1],
        ]
    )
    assert np.array_equal(bins_of(points, values), np.searchsorted(points, values, "right"))
