"""Data quality of a window against the reference profile: missing values, out-of-range
values, unseen categories, schema changes and traffic volume, as a user would read them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluators.judgement.monitoring import Severity, judge_quality
from evaluators.policy import MonitoringPolicy
from evaluators.statistics.data_quality import data_quality, schema_changes, volume
from evaluators.statistics.drift import MONITORING_CDF_POINTS, build_profile
from evaluators.statistics.drift_tests import window_drift

RNG = np.random.default_rng(4)
N = 20_000


def _frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0, 10.0, n)
    tenure[rng.random(n) < 0.02] = np.nan  # 2% missing in training already
    return pd.DataFrame(
        {
            "tenure": tenure,
            "plan": rng.choice(["free", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
        }
    )


PROFILE = build_profile(_frame(), columns=["tenure", "plan"], cdf_points=MONITORING_CDF_POINTS)
POLICY = MonitoringPolicy()
HISTORY = [10_000, 9_500, 10_400, 9_900, 10_100, 10_050, 9_800]


def _quality(window: pd.DataFrame, history: list[int] = HISTORY) -> list[str]:
    drift = window_drift(PROFILE, window)
    found = data_quality(
        PROFILE, window, drift, history=history, min_history=6, keep=168, ignore=["score"]
    )
    return [f"{f.severity.name}: {f.text}" for f in judge_quality(POLICY, found)]


def test_a_window_like_the_reference_has_no_quality_finding() -> None:
    window = _frame(10_000, seed=1)
    window["score"] = 0.5
    assert _quality(window) == []


def test_more_missing_values_than_the_reference_warn_with_both_rates() -> None:
    window = _frame(10_000, seed=2)
    window.loc[window.index[:1000], "tenure"] = np.nan  # ~12% missing against 2%
    [line] = _quality(window)
    assert line.startswith("WARNING: tenure: 11.")
    assert "missing (reference 1.9%)" in line


def test_values_outside_the_reference_range_warn() -> None:
    window = _frame(10_000, seed=3)
    window.loc[window.index[:300], "tenure"] = -5.0  # negative tenure: a units bug upstream
    assert _quality(window) == ["WARNING: tenure: 3.0% outside the reference range."]


def test_unseen_categories_warn_beyond_what_the_reference_called_other() -> None:
    window = _frame(10_000, seed=5)
    window.loc[window.index[:500], "plan"] = "enterprise"
    lines = _quality(window)
    assert "WARNING: plan: 5.0% in categories the reference has not seen." in lines
    # A profile that kept only the top category counted the rest as "other": those are not new.
    narrow = build_profile(_frame(), columns=["plan"], max_categories=1)
    same = _frame(10_000, seed=6)
    [tests] = window_drift(narrow, same)
    found = data_quality(narrow, same, [tests], history=[], min_history=6, keep=168)
    assert found.columns[0].unseen == pytest.approx(0, abs=0.02)


def test_schema_changes_missing_added_and_retyped_columns() -> None:
    window = _frame(10_000, seed=7).drop(columns=["plan"])
    window["tenure"] = window["tenure"].astype(str)  # numbers arriving as text
    window["new_signal"] = 1.0
    change = schema_changes(PROFILE, dict(window.dtypes.items()))
    assert change.missing == ("plan",) and change.added == ("new_signal",)
    assert [r.column for r in change.retyped] == ["tenure"]
    lines = _quality(window)
    assert lines[:2] == [
        "CRITICAL: 1 features missing: plan.",
        "CRITICAL: tenure was numeric, now str.",
    ]
    assert "WARNING: 1 new columns: new_signal." in lines


def test_a_categorical_feature_arriving_as_numbers_is_not_a_type_change() -> None:
    assert not schema_changes(PROFILE, {"tenure": "float64", "plan": "int64"}).changed


def test_column_lists_from_traffic_are_bounded() -> None:
    columns = {f"c{i}_" + "x" * 500: "float64" for i in range(200)} | {"tenure": "float64"}
    change = schema_changes(PROFILE, columns)
    assert change.added_count == 200 and len(change.added) == 50
    assert all(len(name) <= 200 for name in change.added)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (10_000, []),
        (4_000, ["WARNING: Traffic: 4,000 rows, 0.40× the usual 10,000."]),
        (25_000, ["WARNING: Traffic: 25,000 rows, 2.50× the usual 10,000."]),
    ],
    ids=["usual traffic is fine", "a drop to 40% warns", "a spike to 250% warns"],
)
def test_traffic_volume_against_its_usual_level(rows: int, expected: list[str]) -> None:
    assert _quality(_frame(rows, seed=8)) == expected


def test_volume_is_the_median_of_history_and_not_judged_without_enough() -> None:
    assert volume(50, [100, 100, 0, 100, 100, 100], min_history=6, keep=10).ratio == 0.5
    assert volume(50, [100] * 5, min_history=6, keep=10).ratio is None
    assert volume(50, [100] * 3 + [10] * 6, min_history=6, keep=6).usual == 10
    assert _quality(_frame(100, seed=9), history=[10_000] * 3) == []


def test_findings_are_sorted_worst_first() -> None:
    window = _frame(10_000, seed=10).drop(columns=["plan"])
    window.loc[window.index[:2000], "tenure"] = np.nan
    severities = [line.split(":")[0] for line in _quality(window, history=[1] * 10)]
    assert severities == sorted(severities, key=lambda s: -Severity[s])
