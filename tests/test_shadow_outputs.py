"""Paired outputs: flips at each threshold overall and per segment (segments read from the
logged features JSON), Spearman and Wilson against their references, anomalies."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluators.statistics.logged_features import segment_values
from evaluators.statistics.output_anomalies import output_anomalies
from evaluators.statistics.paired_outputs import (
    compare_outputs,
    spearman,
    wilson_interval,
)
from evaluators.statistics.segments import partition


def test_flips_are_counted_at_every_threshold_and_in_every_segment() -> None:
    production = np.array([0.1, 0.4, 0.6, 0.9, 0.45, 0.55])
    shadow = np.array([0.1, 0.6, 0.4, 0.95, 0.85, 0.5])
    region = partition("region", pd.Series(["eu", "eu", "us", "us", "eu", "us"]))
    result = compare_outputs(
        production=production,
        shadow=shadow,
        thresholds=[0.5, 0.8],
        segments=[region],
        confidence=0.95,
    )
    table = {(r.threshold, r.value): (r.flips, r.pairs) for r in result.flips}
    assert table == {
        (0.5, None): (3, 6),  # 0.4→0.6, 0.6→0.4, 0.45→0.85
        (0.5, "eu"): (2, 3),
        (0.5, "us"): (1, 3),
        (0.8, None): (1, 6),  # 0.45→0.85 only (0.9 and 0.95 are both above)
        (0.8, "eu"): (1, 3),
        (0.8, "us"): (0, 3),
    }
    assert result.pairs == 6


def test_a_score_exactly_at_the_threshold_counts_as_above() -> None:
    result = compare_outputs(
        production=np.array([0.5]),
        shadow=np.array([0.49]),
        thresholds=[0.5],
        segments=[],
        confidence=0.95,
    )
    assert result.flips[0].flips == 1


def test_pairs_without_a_finite_score_on_either_side_are_left_out() -> None:
    result = compare_outputs(
        production=np.array([0.2, np.nan, 0.7]),
        shadow=np.array([0.8, 0.1, np.inf]),
        thresholds=[0.5],
        segments=[partition("r", pd.Series(["a", "b", "a"]))],
        confidence=0.95,
    )
    assert result.pairs == 1 and result.flips[0].flips == 1
    assert {(r.value, r.pairs) for r in result.flips if r.value} == {("a", 1), ("b", 0)}


def test_spearman_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(1)
    a = np.round(rng.random(5_000), 2)
    b = np.round(a + rng.normal(0, 0.2, 5_000), 1)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(spearman(np.ones(10), np.arange(10.0)))


def test_wilson_interval_matches_the_textbook_value() -> None:
    # Newcombe (1998), Stat Med 17:857, Table I: 15 of 148 → 0.0624 to 0.1605.
    low, high = wilson_interval(np.array([15]), np.array([148]), confidence=0.95)
    assert (round(float(low[0]), 4), round(float(high[0]), 4)) == (0.0624, 0.1605)
    low, high = wilson_interval(np.array([0]), np.array([0]), confidence=0.95)
    assert np.isnan(low[0])


def test_score_shift_has_an_interval_around_the_mean_difference() -> None:
    rng = np.random.default_rng(2)
    production = rng.random(10_000)
    result = compare_outputs(
        production=production,
        shadow=production + 0.03 + rng.normal(0, 0.01, 10_000),
        thresholds=[],
        segments=[],
        confidence=0.95,
    )
    assert result.shift.low < 0.03 < result.shift.high
    assert result.shift.high - result.shift.low < 0.001


def test_segment_values_come_from_the_features_json_and_odd_rows_are_read_exactly() -> None:
    rows = [
        json.dumps({"tenure": 3.5, "region": "eu"}),
        json.dumps({"region": "us", "tenure": 1}),
        json.dumps({"region": "caf\u00e9"}),  # escaped by json.dumps: read by json.loads
        '{"region" :"apac" , "x": 1}',
        '{"note": "\\"region\\": \\"spoof\\"", "region": "mea"}',  # a key inside a string
        '{"a": "region", "region": "latam"}',  # the name as a value first
        json.dumps({"region": None}),
        json.dumps({"region": {"nested": 1}}),
        json.dumps({"tier": 3}),
        "not json",
        None,
    ]
    frame = segment_values(pd.Series(rows, dtype="string"), ["region", "tier"])
    frame = frame.astype(object).where(frame.notna(), None)
    assert frame["region"].tolist() == [
        "eu",
        "us",
        "café",
        "apac",
        "mea",
        "latam",
        None,
        None,
        None,
        None,
        None,
    ]
    assert frame["tier"].tolist() == [None] * 8 + ["3", None, None]


def test_anomalies_count_errors_invalid_scores_and_the_spread() -> None:
    found = output_anomalies(
        shadow_scores=np.array([0.2, np.nan, 1.5, -0.1, 0.4, 0.0]),
        shadow_failed=np.array([False, False, False, False, False, True]),
        production_scores=np.array([0.1, 0.9]),
        output_min=0.0,
        output_max=1.0,
    )
    assert (found.requests, found.errors, found.invalid, found.valid) == (6, 1, 3, 2)
    assert found.spread == pytest.approx(0.2) and found.production_spread == pytest.approx(0.8)
    assert found.error_rate == pytest.approx(1 / 6) and found.invalid_rate == pytest.approx(3 / 5)


def _expected(row: dict, column: str) -> str | None:  # type: ignore[type-arg]
    value = row.get(column)
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, str):
        return value if len(value) <= 200 else None
    return json.dumps(value)


def test_segment_values_agree_with_json_loads_on_random_flat_rows() -> None:
    """Property: for flat JSON objects (what the gateway writes) in any key order, spacing and
    escaping, the fast reading gives exactly what json.loads gives."""
    rng = np.random.default_rng(11)
    pool: list[object] = [
        "eu",
        "north_america",
        "",
        "null",
        "a,b}",
        'quote"d',
        "back\\slash",
        "café",
        "日本",
        "x" * 250,
        "region",  # the column's name as another key's value
        '"region": "spoof"',  # the key inside a string (its quotes escaped)
        3,
        -2.5,
        1e-05,
        True,
        False,
        None,
        {"nested": 1},
        [1, 2],
    ]
    rows, parsed = [], []
    for _ in range(3_000):
        keys = ["region", "tier", "f1", "f2", "f3"]
        present = [k for k in keys if rng.random() < 0.8]
        order = list(rng.permutation(present))
        row = {str(k): pool[int(rng.integers(len(pool)))] for k in order}
        separators = [(", ", ": "), (",", ":"), (" ,  ", " :  ")][int(rng.integers(3))]
        rows.append(json.dumps(row, separators=separators, ensure_ascii=bool(rng.random() < 0.5)))
        parsed.append(row)
    frame = segment_values(pd.Series(rows, dtype="string"), ["region", "tier"])
    frame = frame.astype(object).where(frame.notna(), None)
    for column in ("region", "tier"):
        expected = [_expected(row, column) for row in parsed]
        assert frame[column].tolist() == expected
