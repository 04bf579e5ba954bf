"""Claimed-vs-reproduced checks and the training/benchmark leakage check."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from evaluators.candidate import ClaimedResults
from evaluators.judgement.trust import MAX_EXAMPLES, check_claims, check_leakage
from tests.report_factory import comparison

OVERALL = [
    comparison("roc_auc", candidate=0.861, delta=0.024),
    comparison("log_loss", candidate=0.312, delta=-0.011),
]


def claims(**metrics: float) -> ClaimedResults:
    return ClaimedResults(metrics=metrics)


@pytest.mark.parametrize(
    ("claimed", "metric", "reproduced", "flagged", "note"),
    [
        pytest.param({"roc_auc": 0.87}, "roc_auc", 0.861, False, "", id="a claim within tolerance"),
        pytest.param({"roc_auc": 0.91}, "roc_auc", 0.861, True, "", id="an optimistic claim"),
        pytest.param(
            {"AUC": 0.86}, "roc_auc", 0.861, False, "claimed as 'AUC'", id="a common alias"
        ),
        pytest.param(
            {"LogLoss": 0.4}, "log_loss", 0.312, True, "claimed as 'LogLoss'", id="alias, far off"
        ),
        pytest.param(
            {"roc_auc": 86.1},
            "roc_auc",
            0.861,
            True,
            "the claim looks like a percentage; report it as a fraction",
            id="a percentage is flagged and explained",
        ),
    ],
)
def test_claimed_metric_is_compared_with_the_candidate(
    claimed: dict[str, float], metric: str, reproduced: float, flagged: bool, note: str
) -> None:
    (check,) = check_claims(claimed=claims(**claimed), overall=OVERALL, tolerance=0.02)
    assert check.metric == metric
    assert check.reproduced == pytest.approx(reproduced)
    assert check.flagged is flagged
    assert check.note == note
    assert check.difference == pytest.approx(reproduced - next(iter(claimed.values())))


def test_a_metric_shipyard_does_not_measure_is_shown_but_not_flagged() -> None:
    (check,) = check_claims(claimed=claims(training_time=320.0), overall=OVERALL, tolerance=0.02)
    assert check.reproduced is None
    assert check.difference is None
    assert check.flagged is False
    assert "not reproduced" in check.note


def test_a_claimed_brier_score_is_reproduced_from_the_calibration_section() -> None:
    (check,) = check_claims(
        claimed=claims(brier=0.16), overall=OVERALL, tolerance=0.02, also_measured={"brier": 0.17}
    )
    assert check.reproduced == pytest.approx(0.17)
    assert check.flagged is False and "not reproduced" not in check.note


def test_a_non_finite_claim_is_flagged() -> None:
    (check,) = check_claims(claimed=claims(roc_auc=math.nan), overall=OVERALL, tolerance=0.02)
    assert check.flagged is True


def test_claims_keep_the_authors_order() -> None:
    checks = check_claims(
        claimed=claims(log_loss=0.31, roc_auc=0.86, f1=0.5), overall=OVERALL, tolerance=0.02
    )
    assert [c.metric for c in checks] == ["log_loss", "roc_auc", "f1"]


BENCHMARK_IDS = pd.Series([f"c-{i}" for i in range(1_000)])


@pytest.mark.parametrize(
    ("manifest", "ids", "passed", "overlapping", "examples"),
    [
        pytest.param(["t-1", "t-2"], BENCHMARK_IDS, True, 0, [], id="disjoint ids pass"),
        pytest.param(
            ["t-1", "c-5", "c-7"], BENCHMARK_IDS, False, 2, ["c-5", "c-7"], id="shared ids fail"
        ),
        pytest.param(
            [f"c-{i}" for i in range(20)],
            BENCHMARK_IDS,
            False,
            20,
            [f"c-{i}" for i in range(MAX_EXAMPLES)],
            id="examples stop at five",
        ),
        pytest.param(
            ["17", "18", "x"], pd.Series([1, 17, 300]), False, 1, ["17"], id="integer ids match"
        ),
        pytest.param(
            ["17", "300"],
            pd.Series([1.0, 17.0, np.nan]),
            False,
            1,
            ["17"],
            id="whole-number float ids with gaps match like integers",
        ),
        pytest.param(
            ["c-5", "c-5", " c-5 "], ["c-5"], False, 1, ["c-5"], id="repeated entries count once"
        ),
        pytest.param(
            ["snapshot:c-5"],
            ["snapshot:c-5"],
            False,
            1,
            ["snapshot:c-5"],
            id="an entry that is a benchmark id leaks even if it looks like a snapshot",
        ),
    ],
)
def test_training_ids_in_the_benchmark_fail_the_leakage_check(
    manifest: list[str],
    ids: pd.Series | list[str],
    passed: bool,
    overlapping: int,
    examples: list[str],
) -> None:
    check = check_leakage(manifest_entries=manifest, benchmark_ids=ids, id_column="customer_id")
    assert check.passed is passed
    assert check.overlapping == overlapping
    assert check.examples == examples


def test_snapshot_references_are_counted_apart_and_noted() -> None:
    check = check_leakage(
        manifest_entries=["snapshot:2026-10-01", "s3://lake/train.parquet", "t-1"],
        benchmark_ids=BENCHMARK_IDS,
        id_column="customer_id",
    )
    assert check.passed is True
    assert check.manifest_ids == 1
    assert "2 snapshot references (e.g. snapshot:2026-10-01)" in check.note


def test_without_an_id_column_leakage_is_not_checked_and_says_so() -> None:
    check = check_leakage(manifest_entries=["c-5"], benchmark_ids=BENCHMARK_IDS, id_column=None)
    assert check.passed is True
    assert check.overlapping == 0
    assert "Not checked" in check.note


def test_a_million_benchmark_ids_are_checked_quickly() -> None:
    ids = pd.Series(np.arange(1_000_000, dtype=np.int64))
    manifest = [str(i) for i in range(999_990, 1_010_000)]
    started = time.perf_counter()
    check = check_leakage(manifest_entries=manifest, benchmark_ids=ids, id_column="row_id")
    elapsed = time.perf_counter() - started
    assert check.overlapping == 10
    assert check.examples == [str(i) for i in range(999_990, 999_995)]
    assert elapsed < 5.0
