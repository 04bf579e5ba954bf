"""Statistical honesty: nominal 95% paired intervals cover a known true AUC difference in 93–97%
of simulated trials, and a candidate truly worse on one segment is flagged there and only there.

Scores are binormal: given the label y, (candidate, production) ~ N(y·(μc, μb), [[1, ρ], [ρ, 1]]),
so each model's true AUC is Φ(μ/√2) and the true paired difference is known analytically.
Many trials run at once as segments of one partition through the same vectorised engine that
`compare` uses; the DeLong overall path runs through `compare` itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from scipy import stats

from evaluators.candidate import Task
from evaluators.metrics.registry import get_metric
from evaluators.policy import Policy
from evaluators.report import Outcome
from evaluators.statistics.compare import compare
from evaluators.statistics.compare_engine import PairedData, estimate
from evaluators.statistics.intervals import make_poisson_bootstrap, normal_interval

TRIALS = 1000
ROWS_PER_TRIAL = 600
RATE = 0.3
RHO = 0.6
SHIFT_CANDIDATE, SHIFT_BASELINE = 1.3, 1.1
COVERAGE_RANGE = (0.93, 0.97)


def true_auc(shift: float | npt.NDArray[Any]) -> Any:
    """AUC of a unit-variance binormal score whose positives are shifted by `shift`."""
    return stats.norm.cdf(np.asarray(shift) / np.sqrt(2))


def binormal_pairs(
    *,
    rng: np.random.Generator,
    rows: int,
    shift_candidate: float | npt.NDArray[Any],
    shift_baseline: float | npt.NDArray[Any],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Labels and paired scores; shifts may be per row."""
    y = (rng.random(rows) < RATE).astype(np.int64)
    first = rng.standard_normal(rows)
    second = RHO * first + np.sqrt(1 - RHO**2) * rng.standard_normal(rows)
    return y, first + y * shift_candidate, second + y * shift_baseline


def trial_batch(seed: int) -> tuple[PairedData, npt.NDArray[np.int64]]:
    """TRIALS independent trials stacked, with the trial number as segment code."""
    rng = np.random.default_rng(seed)
    y, cand, base = binormal_pairs(
        rng=rng,
        rows=TRIALS * ROWS_PER_TRIAL,
        shift_candidate=SHIFT_CANDIDATE,
        shift_baseline=SHIFT_BASELINE,
    )
    trial = np.repeat(np.arange(TRIALS, dtype=np.int64), ROWS_PER_TRIAL)
    return PairedData(y, cand, base, Task.BINARY, 0.5), trial


def segment_coverage(*, seed: int, method: str, resamples: int = 1000) -> float:
    """Share of trials whose nominal 95% interval (segment engine) covers the true delta."""
    data, trial = trial_batch(seed)
    boot = make_poisson_bootstrap(n_rows=data.n_rows, resamples=resamples, seed=seed)
    found = estimate(
        data=data,
        codes=trial,
        n_segments=TRIALS,
        metrics=[get_metric("roc_auc", task=Task.BINARY)],
        delong={"roc_auc"} if method == "delong" else set(),
        bootstrap=boot,
    )["roc_auc"]
    low, high = normal_interval(delta=found.delta, se=found.se, confidence=0.95)
    truth = true_auc(SHIFT_CANDIDATE) - true_auc(SHIFT_BASELINE)
    return float(((low <= truth) & (truth <= high)).mean())


def overall_coverage(*, seed: int, method: str, trials: int) -> float:
    """Share of `compare` calls whose overall 95% interval covers the true delta."""
    rng = np.random.default_rng(seed)
    policy = Policy.model_validate({"statistics": {"method": method, "seed": seed}})
    truth = true_auc(SHIFT_CANDIDATE) - true_auc(SHIFT_BASELINE)
    covered = 0
    for _ in range(trials):
        y, cand, base = binormal_pairs(
            rng=rng,
            rows=ROWS_PER_TRIAL,
            shift_candidate=SHIFT_CANDIDATE,
            shift_baseline=SHIFT_BASELINE,
        )
        result = compare(
            y_true=y,
            candidate=cand,
            baseline=base,
            segments=None,
            policy=policy,
            task=Task.BINARY,
        )
        auc = result.overall[0]
        covered += auc.ci_low <= truth <= auc.ci_high
    return covered / trials


def test_delong_overall_interval_covers_the_true_difference_in_95_percent_of_1000_trials() -> None:
    coverage = overall_coverage(seed=11, method="delong", trials=TRIALS)
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], coverage


def test_bootstrap_overall_interval_covers_the_true_difference_in_95_percent_of_1000_trials() -> (
    None
):
    # Through `compare` itself: each call draws its own 1000 Poisson resamples.
    coverage = overall_coverage(seed=12, method="bootstrap", trials=TRIALS)
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], coverage


@pytest.mark.parametrize(
    "method",
    ["delong", "bootstrap"],
    ids=["delong segment intervals", "bootstrap segment intervals"],
)
def test_segment_intervals_cover_the_true_difference_in_95_percent_of_1000_segments(
    method: str,
) -> None:
    coverage = segment_coverage(seed=21, method=method)
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], coverage


REGIONS = ["east", "north", "south", "west"]
WORSE_REGION = "north"


def one_bad_region(seed: int) -> tuple[Any, Any, Any, pd.DataFrame]:
    """Candidate better everywhere except the north, where it is much worse."""
    rng = np.random.default_rng(seed)
    rows = 24_000
    region = rng.choice(REGIONS, rows)
    device = rng.choice(["android", "ios", "web"], rows)
    tier = rng.choice(["free", "gold", "pro", "team"], rows)
    shift_candidate = np.where(region == WORSE_REGION, 0.7, 1.25)
    y, cand, base = binormal_pairs(
        rng=rng, rows=rows, shift_candidate=shift_candidate, shift_baseline=1.1
    )
    return y, cand, base, pd.DataFrame({"region": region, "device": device, "tier": tier})


@pytest.mark.parametrize(
    "correction", ["holm", "benjamini-hochberg"], ids=["with holm", "with benjamini-hochberg"]
)
@pytest.mark.parametrize("seed", [1, 2, 3], ids=lambda s: f"seed {s}")
def test_a_candidate_worse_on_one_segment_is_flagged_there_and_nowhere_else(
    seed: int, correction: str
) -> None:
    y, cand, base, segments = one_bad_region(seed)
    policy = Policy.model_validate(
        {"segments": {"correction": correction, "tolerance": 0.005}, "statistics": {"seed": seed}}
    )
    result = compare(
        y_true=y,
        candidate=cand,
        baseline=base,
        segments=segments,
        policy=policy,
        task=Task.BINARY,
    )
    flagged = {(s.column, s.value) for s in result.segments if s.outcome is Outcome.REGRESSED}
    assert flagged == {("region", WORSE_REGION)}
    assert len(result.segments) == 4 + 3 + 4
