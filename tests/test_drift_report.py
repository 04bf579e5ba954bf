"""The per-check drift report as a reader sees it: the shifted feature leads the table marked
critical, its chart is an inline image, the score history is drawn, hostile feature names are
escaped and cut everywhere, the stored JSON reads back the same and stays small, and a window
with too few rows says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from evaluators.drift_report import (
    MAX_HISTORY,
    DriftReport,
    PredictionPoint,
    build_drift_report,
    prediction_point,
)
from evaluators.judgement.monitoring import judge_window
from evaluators.policy import MonitoringPolicy
from evaluators.rendering.drift_html import render_drift_html
from evaluators.statistics.drift import MONITORING_CDF_POINTS, ReferenceProfile, build_profile
from evaluators.statistics.drift_tests import score_profile
from evaluators.statistics.monitoring_window import measure_window

POLICY = MonitoringPolicy(min_rows=1_000)
END = datetime(2026, 3, 2, 12, tzinfo=UTC)
ALERTS = {"feature drift": "warning", "prediction drift": "ok", "data quality": "ok"}
HOSTILE = "<script>alert(1)</script>\u202e$x^\n" + "y" * 10_000
PLANS = ["free", "pro", "team"]


def _traffic(rng: np.random.Generator, n: int, *, shift: float = 0.0) -> pd.DataFrame:
    """`shift` moves `age` by that many standard deviations; the rest stays put."""
    return pd.DataFrame(
        {
            "age": rng.normal(40, 12, n) + 12 * shift,
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(PLANS, n, p=[0.6, 0.3, 0.1]),
            "score": rng.beta(2, 5, n),
        }
    )


REFERENCE = _traffic(np.random.default_rng(0), 20_000)
PROFILE = build_profile(
    REFERENCE, columns=["age", "income", "plan"], cdf_points=MONITORING_CDF_POINTS
)
FIRST_WEEK = score_profile(REFERENCE["score"])


def _history(hours: int) -> list[PredictionPoint]:
    rng = np.random.default_rng(5)
    return [
        prediction_point(END - timedelta(hours=h), rng.beta(2, 5, 500)) for h in range(hours, 0, -1)
    ]


def _report(
    window: pd.DataFrame,
    *,
    profile: ReferenceProfile = PROFILE,
    policy: MonitoringPolicy = POLICY,
    history: list[PredictionPoint] | None = None,
    sample: pd.DataFrame | None = None,
) -> DriftReport:
    measured = measure_window(
        profile,
        window,
        policy=policy,
        history=[len(window)] * 10,
        score_references={"the first week": FIRST_WEEK},
    )
    judged = judge_window(
        policy, drift=measured.drift, quality=measured.quality, predictions=measured.predictions
    )
    return build_drift_report(
        repository="acme/models",
        model="churn",
        version="v3",
        window_start=END - timedelta(hours=1),
        window_end=END,
        profile=profile,
        sample=window if sample is None else sample,
        measurements=measured,
        judgement=judged,
        alerts=ALERTS,
        history=_history(48) if history is None else history,
        min_rows=policy.min_rows,
    )


@pytest.fixture(scope="module")
def shifted() -> DriftReport:
    return _report(_traffic(np.random.default_rng(1), 4_000, shift=1.0))


@pytest.fixture(scope="module")
def shifted_html(shifted: DriftReport) -> str:
    return render_drift_html(
        shifted, links={"Pull request": "https://github.com/acme/models/pull/7"}
    )


def _table_rows(html: str) -> list[tuple[str, str]]:
    table = html.split("<h2>Features</h2>", 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr class=\"(\w+)\"><td class=\"name\"><bdi>([^<]*)</bdi>", table)


def test_the_shifted_feature_leads_the_table_marked_critical(
    shifted: DriftReport, shifted_html: str
) -> None:
    assert shifted.severity == "critical"
    assert (shifted.features[0].feature, shifted.features[0].severity) == ("age", "critical")
    assert {row.severity for row in shifted.features[1:]} == {"ok"}
    rows = _table_rows(shifted_html)
    assert rows[0] == ("critical", "age")
    assert sorted(name for _, name in rows[1:]) == ["income", "plan"]
    assert "Drift in age: PSI" in shifted_html
    assert '<section class="verdict critical">' in shifted_html


def test_the_header_shows_the_window_and_each_checks_alert(shifted_html: str) -> None:
    assert "churn" in shifted_html and "v3" in shifted_html
    assert "2 Mar 2026, 11:00 UTC" in shifted_html and "2 Mar 2026, 12:00 UTC" in shifted_html
    assert "4,000 rows" in shifted_html
    assert re.search(
        r"feature drift</td><td><span class=\"dot warning\"></span>Warning", shifted_html
    )
    assert re.search(r"data quality</td><td><span class=\"dot ok\"></span>OK", shifted_html)
    assert 'href="https://github.com/acme/models/pull/7"' in shifted_html


def test_the_worst_features_are_drawn_in_the_references_own_bins(
    shifted: DriftReport, shifted_html: str
) -> None:
    age = shifted.distributions[0]
    assert age.feature == "age"
    spec = PROFILE.features["age"]
    assert age.reference == pytest.approx([*spec.shares, spec.missing_share], abs=1e-6)
    assert age.current is not None and sum(age.current) == pytest.approx(1, abs=1e-5)
    # Moved up by one σ: the top bin holds far more than its reference tenth.
    assert age.labels[-2].startswith("≥") and age.current[-2] > 0.3
    plan = next(d for d in shifted.distributions if d.feature == "plan")
    assert plan.labels == [*PLANS, "other", "missing"]
    charts = re.findall(
        r'<img alt="Distribution of ([^:"]+): [^"]*" src="data:image/svg\+xml;base64,', shifted_html
    )
    assert charts[0] == "age" and len(charts) == 3


def test_the_page_is_self_contained(shifted_html: str) -> None:
    assert "<script" not in shifted_html.lower()
    assert "<link" not in shifted_html
    assert not re.search(r"""src\s*=\s*["']?\s*(https?:)?//""", shifted_html, flags=re.I)


def test_the_score_history_is_drawn_when_there_are_points(
    shifted: DriftReport, shifted_html: str
) -> None:
    assert len(shifted.history) == 49 and shifted.history[-1] == shifted.prediction
    assert shifted.prediction is not None and shifted.prediction.window_end == END
    assert re.search(
        r'<img alt="Score distribution per window[^"]*" src="data:image/svg\+xml', shifted_html
    )
    # Neither past points nor this window's scores: no chart, and no empty axes.
    bare = shifted.model_copy(update={"history": [], "prediction": None, "distributions": []})
    html = render_drift_html(bare)
    assert "Scores over time" not in html and "<img" not in html


def test_the_history_is_oldest_first_capped_and_replaces_a_stored_point_for_this_window() -> None:
    window = _traffic(np.random.default_rng(2), 1_500)
    stale = prediction_point(END, np.array([0.9, 0.9]))
    report = _report(window, history=[*_history(MAX_HISTORY + 20), stale])
    assert len(report.history) == MAX_HISTORY
    assert [p.window_end for p in report.history] == sorted(p.window_end for p in report.history)
    assert report.history[-1].window_end == END and report.history[-1].rows == 1_500


def test_a_hostile_feature_name_is_escaped_and_cut_everywhere() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({HOSTILE: rng.normal(0, 1, 5_000), "plain": rng.normal(0, 1, 5_000)})
    profile = build_profile(reference, columns=list(reference), cdf_points=MONITORING_CDF_POINTS)
    window = pd.DataFrame(
        {
            HOSTILE: rng.normal(2, 1, 2_000),
            "plain": rng.normal(0, 1, 2_000),
            "score": rng.beta(2, 5, 2_000),
        }
    )
    report = _report(window, profile=profile)
    shown = report.features[0].feature
    assert report.features[0].severity == "critical" and len(shown) <= 64
    assert "\u202e" not in shown and "\n" not in shown and shown.endswith("…")
    assert report.distributions[0].feature == shown
    html = render_drift_html(report)  # the chart's title carries the name (and its `$`)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\u202e" not in html
    assert "y" * 200 not in html
    assert html.count('src="data:image/svg+xml;base64,') == 3  # two features and the history


def test_a_missing_or_hostile_typed_column_still_shows_what_it_can() -> None:
    window = _traffic(np.random.default_rng(4), 1_500)
    measured_on = window.drop(columns=["income"])
    odd = measured_on.copy()
    odd["age"] = pd.Series([{"a": 1}, [1, 2], "x", None] * 375, dtype=object)
    odd["plan"] = pd.Series([{"k": 1}, ["free"], "free", None] * 375, dtype=object)
    report = _report(measured_on, sample=odd)
    income = next(d for d in report.distributions if d.feature == "income")
    assert income.current is not None and income.current[-1] == 1.0  # absent: missing everywhere
    age = next(d for d in report.distributions if d.feature == "age")
    assert age.current is not None and age.current[-1] == 1.0  # nothing readable as a number
    plan = next(d for d in report.distributions if d.feature == "plan")
    assert plan.current is not None and plan.current[-1] == 0.25
    html = render_drift_html(report.model_copy(update={"history": []}))
    assert "income" in html and "age" in html


def test_json_round_trip_is_lossless(shifted: DriftReport) -> None:
    assert DriftReport.from_json(shifted.to_json()) == shifted
    no_values = prediction_point(END, np.array([np.nan, np.inf]))
    assert no_values.rows == 2 and no_values.p50 is None
    assert PredictionPoint.model_validate_json(no_values.model_dump_json()) == no_values


def test_prediction_point_reads_the_finite_scores() -> None:
    point = prediction_point(END, np.append(np.arange(101, dtype=float), [np.nan, np.inf]))
    assert point.rows == 103
    assert (point.p05, point.p25, point.p50, point.p75, point.p95) == (5, 25, 50, 75, 95)
    assert point.mean == 50


@pytest.mark.parametrize(
    ("letter", "all_findings"),
    [("n", True), ("漢", False)],
    ids=["ascii names keep every finding", "3-byte names give up findings of the tail"],
)
def test_two_hundred_drifted_features_stay_under_the_stored_size_bound(
    letter: str, all_findings: bool
) -> None:
    """Every feature drifted (two findings each) under a long name, with two weeks of
    history: the stored JSON stays under 200 KB and every feature is in the table; when the
    names are long in bytes, findings of the least drifted rows are left out (said on the page)."""
    rng = np.random.default_rng(6)
    names = [f"feature_{i:03d}_" + letter * 150 for i in range(200)]
    reference = pd.DataFrame(rng.normal(0, 1, (2_000, 200)), columns=names)
    reference[names[::4]] = rng.choice(["a", "b", "c", "d"], (2_000, 50))
    profile = build_profile(reference, columns=names, cdf_points=MONITORING_CDF_POINTS)
    window = pd.DataFrame(rng.normal(1.5, 1, (1_000, 200)), columns=names)
    window[names[::4]] = rng.choice(["a", "e"], (1_000, 50))
    window["score"] = rng.beta(2, 5, 1_000)
    report = _report(window, profile=profile, history=_history(MAX_HISTORY))
    assert len(report.features) == 200 and report.features_hidden == 0
    assert {row.severity for row in report.features} == {"critical"}
    assert len(report.history) == MAX_HISTORY
    size = len(report.to_json().encode())
    assert size < 200_000, size
    assert (report.findings_from is None) is all_findings
    assert all(row.findings for row in report.features[:20])
    if not all_findings:
        html = render_drift_html(report.model_copy(update={"history": [], "distributions": []}))
        assert "findings are listed for the 100 worst" in html


def test_a_window_without_enough_rows_says_so() -> None:
    window = _traffic(np.random.default_rng(7), 300, shift=2.0)
    report = _report(window, policy=MonitoringPolicy(min_rows=5_000))
    assert report.severity == "no_data" and not report.features and not report.distributions
    html = render_drift_html(report)
    assert "Not enough rows to judge this window: 300 rows, fewer than the 5,000 needed" in html
    assert "<h2>Features</h2>" not in html and "Distribution of" not in html
    assert '<section class="verdict no_data">' in html


def test_only_http_links_are_kept() -> None:
    report = _report(_traffic(np.random.default_rng(8), 1_200)).model_copy(
        update={"history": [], "distributions": []}
    )
    html = render_drift_html(
        report,
        links={
            "Runbook": "https://runbooks.example/churn",
            "evil": "javascript:alert(1)",
            "<b>x</b>": 'https://example.com/"onmouseover=alert(1)',
        },
    )
    assert 'href="https://runbooks.example/churn"' in html
    assert "javascript:" not in html and "onmouseover" not in html and "<b>x</b>" not in html
