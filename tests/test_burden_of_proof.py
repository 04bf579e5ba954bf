"""Auto-promotion needs proof, measured against known truth.

Scores are binormal: given the label y (prevalence 0.3), (candidate, production) ~
N(y·(μc, μb), [[1, ρ], [ρ, 1]]) with ρ = 0.6, per segment. A model's true AUC is Φ(μ/√2), so
each segment's true AUC difference is chosen exactly: μc = √2·Φ⁻¹(Φ(μb/√2) + d). Scores are
passed through a logistic so they read as probabilities; calibration is not what is tested
here, so the policy's calibration limits are wide open and latency is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from scipy import stats

from evaluators.candidate import Task
from evaluators.judgement.verdict import decide
from evaluators.policy import Policy
from evaluators.report import Decision, EvaluationReport, Outcome
from evaluators.statistics.compare import compare
from evaluators.statistics.multiple_testing import benjamini_hochberg, holm

RATE, RHO, SHIFT_BASELINE = 0.3, 0.6, 1.1
ALPHA = 0.05


@dataclass(frozen=True)
class Scenario:
    """Segments of `rows` rows each with a known true AUC difference (candidate - production)."""

    name: str
    rows: tuple[int, ...]
    truth: tuple[float, ...]
    tolerance: float


def shift_for(auc: float) -> float:
    return float(np.sqrt(2) * stats.norm.ppf(auc))


def simulate(
    scenario: Scenario, rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[Any], pd.DataFrame]:
    """Labels, candidate and production probabilities, and the segment column."""
    base_auc = float(stats.norm.cdf(SHIFT_BASELINE / np.sqrt(2)))
    sizes = np.asarray(scenario.rows)
    codes = np.repeat(np.arange(sizes.size), sizes)
    shift_candidate = np.array([shift_for(base_auc + d) for d in scenario.truth])[codes]
    n = int(sizes.sum())
    y = (rng.random(n) < RATE).astype(np.int64)
    first = rng.standard_normal(n)
    second = RHO * first + np.sqrt(1 - RHO**2) * rng.standard_normal(n)
    candidate = 1 / (1 + np.exp(-(first + y * shift_candidate - 1.5)))
    baseline = 1 / (1 + np.exp(-(second + y * SHIFT_BASELINE - 1.5)))
    segment = pd.DataFrame({"segment": np.array([f"s{i}" for i in range(sizes.size)])[codes]})
    return y, candidate, baseline, segment


def policy_for(scenario: Scenario, *, correction: str = "holm", seed: int = 0) -> Policy:
    """The fixture policy's statistics (segment tolerance, sizes, margins); latency off."""
    return Policy.model_validate(
        {
            "metrics": [{"name": "roc_auc", "margin": 0.002, "tolerance": 0.005}],
            "segments": {
                "min_size": 500,
                "min_positives": 30,
                "tolerance": scenario.tolerance,
                "correction": correction,
            },
            "calibration": {"max_ece_increase": 1.0, "max_threshold_shift": 1.0},
            "latency": {"enabled": False},
            "statistics": {"seed": seed},
        }
    )


def evaluate(
    scenario: Scenario, rng: np.random.Generator, *, correction: str = "holm"
) -> tuple[EvaluationReport, Policy]:
    y, candidate, baseline, segments = simulate(scenario, rng)
    policy = policy_for(scenario, correction=correction)
    found = compare(
        y_true=y,
        candidate=candidate,
        baseline=baseline,
        segments=segments,
        policy=policy,
        task=Task.BINARY,
    )
    report = EvaluationReport(
        model="sim",
        task=Task.BINARY.value,
        created_at=datetime(2026, 11, 25, tzinfo=UTC),
        statistics=found.statistics,
        primary_metric="roc_auc",
        overall=found.overall,
        segments=found.segments,
        calibration=found.calibration,
    )
    return report, policy


def promotion_rate(scenario: Scenario, *, trials: int, seed: int) -> float:
    """Share of trials whose verdict is eligible for auto-promotion."""
    rng = np.random.default_rng(seed)
    promoted = 0
    for _ in range(trials):
        report, policy = evaluate(scenario, rng)
        promoted += decide(report=report, policy=policy).decision is Decision.AUTO_PROMOTE_ELIGIBLE
    return promoted / trials


# Better overall (+0.02 on big segments) but truly worse on one judged segment.
WORSE_600_TOL_001 = Scenario("600 rows -0.03, tolerance 0.01", (5000, 5000, 5000, 600),
                             (0.02, 0.02, 0.02, -0.03), 0.01)  # fmt: skip
WORSE_600_TOL_0 = Scenario("600 rows -0.03, tolerance 0", (5000, 5000, 5000, 600),
                           (0.02, 0.02, 0.02, -0.03), 0.0)  # fmt: skip
WORSE_5000_TOL_0 = Scenario("5,000 rows -0.01, tolerance 0", (5000, 5000, 5000, 5000),
                            (0.02, 0.02, 0.02, -0.01), 0.0)  # fmt: skip
BETTER_EVERYWHERE = Scenario("better everywhere, 5,000-row segments", (5000,) * 4,
                             (0.02,) * 4, 0.01)  # fmt: skip
WORSE = [WORSE_600_TOL_001, WORSE_600_TOL_0, WORSE_5000_TOL_0]
# Several segments truly worse by different amounts, so Holm and Bonferroni can differ.
MIXED = Scenario("mixed", (2000,) * 8, (-0.06, -0.045, -0.035, -0.03, 0.0, 0.0, 0.02, 0.02), 0.0)

TRIALS = 40


@pytest.mark.parametrize("scenario", WORSE, ids=[f"worse on one segment: {s.name}" for s in WORSE])
def test_a_candidate_truly_worse_on_a_judged_segment_is_auto_promoted_at_most_alpha_of_the_time(
    scenario: Scenario,
) -> None:
    rate = promotion_rate(scenario, trials=TRIALS, seed=101)
    assert rate <= ALPHA, rate


def test_a_candidate_truly_better_everywhere_on_5000_row_segments_is_still_auto_promoted() -> None:
    rate = promotion_rate(BETTER_EVERYWHERE, trials=TRIALS, seed=102)
    assert rate >= 0.8, rate


def reference_holm(p: list[float], alpha: float) -> set[int]:
    """Holm (1979) step-down, written out: reject in ascending order while p_(i) < α/(m-i)."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected: set[int] = set()
    for rank, index in enumerate(order):
        if p[index] < alpha / (len(p) - rank):
            rejected.add(index)
        else:
            break
    return rejected


def reference_bh(p: list[float], alpha: float) -> set[int]:
    """Benjamini–Hochberg step-up: reject the k smallest, k the largest with p_(k) < kα/m."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    largest = 0
    for rank, index in enumerate(order, start=1):
        if p[index] < rank * alpha / len(p):
            largest = rank
    return set(order[:largest])


def reference_p(delta: float, se: float, tolerance: float) -> float:
    """p-value of 'not worse than -tolerance' (directional two-sided), from delta and SE."""
    return float(min(1.0, 2 * stats.norm.cdf((delta + tolerance) / se)))


@pytest.mark.parametrize(
    ("correction", "reference"),
    [("holm", reference_holm), ("benjamini-hochberg", reference_bh)],
    ids=["holm flags equal a written-out step-down", "bh flags equal a written-out step-up"],
)
def test_regression_flags_equal_an_independent_implementation_on_every_trial(
    correction: str, reference: Any
) -> None:
    rng = np.random.default_rng(103)
    differs_from_bonferroni = 0
    for _ in range(TRIALS):
        report, _ = evaluate(MIXED, rng, correction=correction)
        judged = [s for s in report.segments if s.outcome is not Outcome.TOO_SMALL]
        metrics = [s.metrics[0] for s in judged]
        assert all(m.se is not None for m in metrics)
        p = [reference_p(m.delta, m.se or 0.0, MIXED.tolerance) for m in metrics]
        expected = reference(p, ALPHA)
        flagged = {i for i, s in enumerate(judged) if s.outcome is Outcome.REGRESSED}
        assert flagged == expected
        bonferroni = {i for i, value in enumerate(p) if value < ALPHA / len(p)}
        differs_from_bonferroni += flagged != bonferroni
        # The adjusted p-values shown are the textbook ones, and the flag is 'adjusted p < α'.
        adjust = holm if correction == "holm" else benjamini_hochberg
        np.testing.assert_allclose([m.adjusted_p_value for m in metrics], adjust(np.array(p)))
    assert differs_from_bonferroni > 0  # Holm (and BH) reject more than Bonferroni here


def test_segment_intervals_say_which_kind_they_are() -> None:
    report, _ = evaluate(MIXED, np.random.default_rng(104))
    metric = report.segments[0].metrics[0]
    assert metric.interval == "unadjusted 95% CI"
    assert metric.adjusted_interval == "Bonferroni-adjusted simultaneous 99.375% CI"
    assert metric.adjusted_ci_low is not None and metric.adjusted_ci_high is not None
    assert metric.adjusted_ci_low < metric.ci_low < metric.ci_high < metric.adjusted_ci_high
    assert report.statistics is not None
    assert "Holm's step-down" in report.statistics.correction
