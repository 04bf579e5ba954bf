"""Input drift judged by effect size: the issue's harmless shift against a real one, the
profile's JSON round trip, KS against scipy, categories and missing features."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluators.judgement.shadow import Severity, _drift
from evaluators.policy import Policy
from evaluators.statistics.drift import (
    MAX_PROFILE_BYTES,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    feature_drift,
    psi,
    reference_profile,
)
from tests.test_shadow_decision import evidence

BENCHMARK = "fixtures/benchmark/churn_benchmark.parquet"


def _reference(rows: int = 50_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "plan": rng.choice(["free", "pro", "team"], size=rows, p=[0.5, 0.3, 0.2]),
        }
    )


def _findings(drifts: list) -> list:  # type: ignore[type-arg]
    return list(_drift(Policy(), evidence(drift=drifts)))


def test_a_harmless_shift_that_ks_flags_is_no_drift_finding() -> None:
    """The issue's example: 0.05σ on 50k rows, KS p ≈ 1e-10, PSI ≈ 0.003: not drift."""
    profile = build_profile(_reference(), columns=["x", "plan"])
    traffic = _reference(seed=1)
    traffic["x"] += 0.05
    drift = {d.feature: d for d in feature_drift(profile, traffic)}
    assert drift["x"].ks_p_value is not None and drift["x"].ks_p_value < 1e-6  # "significant"
    assert drift["x"].psi < 0.01
    findings = _findings(list(drift.values()))
    assert [f.severity for f in findings] == [Severity.OK]
    assert findings[0].text.startswith("No input drift: largest PSI 0.00")


def test_a_real_shift_is_a_failing_finding_and_a_moderate_one_a_warning() -> None:
    profile = build_profile(_reference(), columns=["x", "plan"])
    traffic = _reference(seed=2)
    traffic["x"] = traffic["x"] * 1.5 + 0.8
    rng = np.random.default_rng(8)
    traffic["plan"] = rng.choice(["free", "pro", "team"], size=len(traffic), p=[0.3, 0.4, 0.3])
    drift = {d.feature: d for d in feature_drift(profile, traffic)}
    assert drift["x"].psi > 0.25
    assert 0.1 <= drift["plan"].psi < 0.25  # PSI 0.17 expected from the shares
    findings = _findings(list(drift.values()))
    assert [f.severity for f in findings] == [Severity.FAIL, Severity.WARN]
    assert findings[0].text.startswith("Input drift in x: PSI ")
    assert "at or above the 0.25 failure level" in findings[0].text


def test_the_profile_survives_json_and_gives_the_same_numbers() -> None:
    frame = pd.read_parquet(BENCHMARK)
    columns = ["tenure_months", "logins_30d", "support_tickets_90d", "region", "industry"]
    profile = build_profile(frame, columns=columns)
    again = ReferenceProfile.from_json(profile.to_json())
    assert again == profile
    traffic = frame.sample(20_000, random_state=3)
    assert feature_drift(again, traffic) == feature_drift(profile, traffic)
    assert isinstance(profile.features["region"], CategoricalProfile)
    assert isinstance(profile.features["logins_30d"], NumericProfile)
    assert len(profile.to_json()) < 50_000  # small enough to ship in a model directory


def test_traffic_drawn_from_the_benchmark_itself_shows_no_drift() -> None:
    frame = pd.read_parquet(BENCHMARK)
    columns = [c for c in frame.columns if c not in ("customer_id", "churned")]
    profile = build_profile(frame, columns=columns)
    drift = feature_drift(profile, frame.sample(50_000, random_state=4))
    assert max(d.psi for d in drift) < 0.01


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3])
def test_ks_from_the_profile_matches_scipy_within_one_cdf_step(shift: float) -> None:
    reference = _reference(seed=5)
    traffic = _reference(rows=20_000, seed=6)
    traffic["x"] += shift
    profile = build_profile(reference, columns=["x"])
    [drift] = feature_drift(profile, traffic)
    exact = stats.ks_2samp(reference["x"], traffic["x"]).statistic
    assert drift.ks is not None and abs(drift.ks - exact) <= 0.01


def test_discrete_numeric_features_are_not_mistaken_for_drift() -> None:
    """Counts with many ties (60% zeros): the CDF outline keeps F(x) and F(x⁻) at the ties."""
    rng = np.random.default_rng(7)
    counts = pd.DataFrame({"tickets": rng.poisson(0.5, 50_000).astype(float)})
    profile = build_profile(counts, columns=["tickets"])
    [drift] = feature_drift(profile, pd.DataFrame({"tickets": rng.poisson(0.5, 20_000) * 1.0}))
    assert drift.ks is not None and drift.ks < 0.02
    assert drift.psi < 0.01


def test_an_unseen_category_counts_as_other_and_shows_as_drift() -> None:
    profile = build_profile(_reference(), columns=["plan"])
    traffic = pd.DataFrame({"plan": ["enterprise"] * 250 + ["free"] * 750})
    [drift] = feature_drift(profile, traffic)
    assert drift.psi > 0.25


def test_a_feature_missing_from_traffic_is_drift_not_silence() -> None:
    profile = build_profile(_reference(), columns=["x", "plan"])
    drift = {d.feature: d for d in feature_drift(profile, pd.DataFrame({"x": [0.1] * 100}))}
    assert drift["plan"].missing_share == 1.0
    assert drift["plan"].psi > 0.25


def test_psi_of_a_known_pair_of_distributions() -> None:
    # (0.3-0.5)ln(0.3/0.5) + (0.7-0.5)ln(0.7/0.5) = 0.1022 + 0.0673
    assert psi(np.array([0.5, 0.5]), np.array([0.3, 0.7])) == pytest.approx(0.16946, abs=1e-4)
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0


def test_a_shipped_profile_is_used_and_without_one_the_benchmark_is_profiled() -> None:
    frame = _reference()
    shipped = build_profile(frame.iloc[:1000], columns=["x"]).to_json()
    from_file = reference_profile(shipped, benchmark=frame, columns=["x", "plan"])
    derived = reference_profile(None, benchmark=frame, columns=["x", "plan", "not_there"])
    assert from_file is not None and list(from_file.features) == ["x"]
    assert derived is not None and list(derived.features) == ["x", "plan"]
    assert reference_profile(None, benchmark=None, columns=["x"]) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["features"]["x"].update(shares=[0.0] * len(p["features"]["x"]["shares"])),
            "shares must sum to 1",
        ),
        (
            lambda p: p["features"]["x"].update(edges=p["features"]["x"]["edges"][::-1]),
            "strictly increasing",
        ),
        (lambda p: p["features"]["x"].update(edges=[0.0]), "one more share than edges"),
        (
            lambda p: p["features"]["plan"].update(categories=["free", "free", "pro"]),
            "one share per distinct category",
        ),
        (lambda p: p.update(extra=1), "Extra inputs are not permitted"),
    ],
    ids=[
        "shares that hide drift",
        "unsorted edges",
        "edges and shares disagree",
        "a category twice",
        "an unknown key",
    ],
)
def test_a_tampered_profile_is_refused(change: Any, message: str) -> None:
    data = json.loads(build_profile(_reference(), columns=["x", "plan"]).to_json())
    change(data)
    with pytest.raises(ValueError, match=message):
        ReferenceProfile.from_json(json.dumps(data))


def test_an_oversized_profile_is_refused_before_parsing() -> None:
    with pytest.raises(ValueError, match="larger than"):
        ReferenceProfile.from_json(" " * (MAX_PROFILE_BYTES + 1))
