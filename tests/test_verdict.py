"""The verdict a reviewer sees for each kind of evaluation result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from evaluators.judgement.verdict import MAX_SEGMENT_REASONS, decide
from evaluators.policy import LatencyPolicy, Policy, SegmentPolicy, TrackedMetric
from evaluators.report import (
    ClaimCheck,
    Decision,
    EvaluationReport,
    LeakageCheck,
    Outcome,
    RatioBounds,
    RunStatus,
    SegmentComparison,
)
from tests.report_factory import calibration, comparison, latency, make_report, segment

POLICY = Policy(
    metrics=[TrackedMetric(name="roc_auc", margin=0.002, tolerance=0.005)],
    segments=SegmentPolicy(tolerance=0.01),
)


def log_loss_segment(*, delta: float, half_width: float) -> SegmentComparison:
    metric = comparison("log_loss", candidate=0.3, delta=delta, half_width=half_width)
    return SegmentComparison(
        column="region",
        value="emea",
        rows=600,
        positives=180,
        metrics=[metric],
        outcome=metric.outcome,
    )


def segments_policy(**changes: object) -> Policy:
    return POLICY.model_copy(update={"segments": POLICY.segments.model_copy(update=changes)})


def clean() -> EvaluationReport:
    """Overall ROC AUC +0.024 (95% CI +0.019 to +0.029), no segment regressed, all checks pass."""
    return make_report(regressed=0)


def with_(**changes: object) -> Callable[[], EvaluationReport]:
    return lambda: clean().model_copy(update=changes)


@dataclass(frozen=True)
class Case:
    id: str
    report: Callable[[], EvaluationReport]
    decision: Decision
    reason: str | None = None
    policy: Policy = POLICY


CASES = [
    Case(
        "a clear improvement with every check passing is eligible for auto-promotion",
        clean,
        Decision.AUTO_PROMOTE_ELIGIBLE,
        "ROC AUC improved by +0.024 (95% CI +0.019 to +0.029), above the 0.002 margin.",
    ),
    Case(
        "an improvement whose interval does not clear the margin needs review",
        with_(overall=[comparison("roc_auc", delta=0.003, half_width=0.002)]),
        Decision.NEEDS_REVIEW,
        "ROC AUC changed by +0.003 (95% CI +0.001 to +0.005): not a clear improvement over "
        "the 0.002 margin.",
    ),
    Case(
        "an overall regression beyond the tolerance fails",
        with_(overall=[comparison("roc_auc", delta=-0.02, half_width=0.004)]),
        Decision.FAIL,
        "ROC AUC regressed by -0.020 (95% CI -0.024 to -0.016), beyond the 0.005 tolerance.",
    ),
    Case(
        "a small overall dip within the tolerance needs review rather than failing",
        with_(overall=[comparison("roc_auc", delta=-0.003, half_width=0.001)]),
        Decision.NEEDS_REVIEW,
    ),
    Case(
        "one regressed segment needs a person even though the model improved overall",
        with_(segments=[segment("region", "emea", delta=-0.041, half_width=0.019)]),
        Decision.NEEDS_REVIEW,
        "Segment region=emea regressed: ROC AUC -0.041 (95% CI -0.060 to -0.022).",
    ),
    Case(
        "segments too small to judge do not block auto-promotion",
        with_(
            segments=[
                segment("region", "apac", delta=-0.2, half_width=0.01, outcome=Outcome.TOO_SMALL)
            ]
        ),
        Decision.AUTO_PROMOTE_ELIGIBLE,
        "Too small to judge (under the minimum of 200 rows or 20 positives), not blocking "
        "auto-promotion: region=apac (120 rows).",
    ),
    Case(
        "an important segment too small to judge needs review",
        with_(
            segments=[
                segment("region", "apac", delta=0.02, half_width=0.01, outcome=Outcome.TOO_SMALL)
            ]
        ),
        Decision.NEEDS_REVIEW,
        "Too small to judge (under the minimum of 200 rows or 20 positives), and they are listed "
        "as important (segments.important): region=apac (120 rows). A person must decide.",
        segments_policy(important=["region=apac"]),
    ),
    Case(
        "a whole column can be named important",
        with_(
            segments=[
                segment("region", "apac", delta=0.02, half_width=0.01, outcome=Outcome.TOO_SMALL)
            ]
        ),
        Decision.NEEDS_REVIEW,
        None,
        segments_policy(important=["region"]),
    ),
    Case(
        "segments.small ignore lets even an important small segment pass",
        with_(
            segments=[
                segment("region", "apac", delta=0.02, half_width=0.01, outcome=Outcome.TOO_SMALL)
            ]
        ),
        Decision.AUTO_PROMOTE_ELIGIBLE,
        None,
        segments_policy(important=["region=apac"], small="ignore"),
    ),
    Case(
        "segments.small review makes any small segment block",
        with_(
            segments=[
                segment("region", "apac", delta=0.02, half_width=0.01, outcome=Outcome.TOO_SMALL)
            ]
        ),
        Decision.NEEDS_REVIEW,
        None,
        segments_policy(small="review"),
    ),
    Case(
        "an important segment absent from the benchmark needs review",
        with_(segments=[segment("region", "emea", delta=0.03, half_width=0.01)]),
        Decision.NEEDS_REVIEW,
        "Important segment region=antarctica has no rows in the benchmark.",
        segments_policy(important=["region=antarctica"]),
    ),
    Case(
        "a judged segment whose interval reaches below the tolerance needs review, not a pass",
        with_(segments=[segment("region", "emea", delta=-0.004, half_width=0.02, rows=600)]),
        Decision.NEEDS_REVIEW,
        "Segment region=emea is not shown to be not worse: ROC AUC -0.004 (unadjusted 95% CI "
        "-0.024 to +0.016; one-sided 95% lower bound -0.021, not above -0.010); about 4,696 "
        "rows (it has 600) would show it if the change stayed as observed.",
    ),
    Case(
        "the rule is explained in one sentence when a segment lacks proof",
        with_(segments=[segment("region", "emea", delta=-0.004, half_width=0.02, rows=600)]),
        Decision.NEEDS_REVIEW,
        "Auto-promotion needs proof that no judged segment is worse: on every judged segment, "
        "the one-sided 95% confidence bound on each segment metric's change must be better than "
        "-0.010 (the segment tolerance); not finding a regression is not enough.",
    ),
    Case(
        "a segment observed beyond the tolerance says more rows would not help",
        with_(segments=[segment("region", "emea", delta=-0.012, half_width=0.02, rows=600)]),
        Decision.NEEDS_REVIEW,
        "Segment region=emea is not shown to be not worse: ROC AUC -0.012 (unadjusted 95% CI "
        "-0.032 to +0.008; one-sided 95% lower bound -0.029, not above -0.010); more rows would "
        "not show it unless the true change is smaller than observed.",
    ),
    Case(
        "for a lower-is-better segment metric the upper bound must stay under +tolerance",
        with_(segments=[log_loss_segment(delta=0.004, half_width=0.02)]),
        Decision.NEEDS_REVIEW,
        "Segment region=emea is not shown to be not worse: Log loss +0.004 (unadjusted 95% CI "
        "-0.016 to +0.024; one-sided 95% upper bound +0.021, not below +0.010); about 4,696 "
        "rows (it has 600) would show it if the change stayed as observed.",
        segments_policy(metrics=["log_loss"]),
    ),
    Case(
        "a lower-is-better segment metric that went down is shown not worse",
        with_(segments=[log_loss_segment(delta=-0.02, half_width=0.01)]),
        Decision.AUTO_PROMOTE_ELIGIBLE,
        None,
        segments_policy(metrics=["log_loss"]),
    ),
    Case(
        "a segment shown not worse within the tolerance passes",
        with_(segments=[segment("region", "emea", delta=-0.002, half_width=0.005)]),
        Decision.AUTO_PROMOTE_ELIGIBLE,
        "Every judged segment is shown not worse (1 of 1 judged): each one-sided 95% lower bound "
        "on the change lies above -0.010, the segment tolerance.",
    ),
    Case(
        "a lower-is-better metric that went down counts as an improvement",
        with_(overall=[comparison("log_loss", candidate=0.31, delta=-0.011, half_width=0.004)]),
        Decision.AUTO_PROMOTE_ELIGIBLE,
        "Log loss (lower is better) fell by 0.011 (95% CI -0.015 to -0.007): an improvement "
        "clear of the 0.001 margin.",
        Policy(
            metrics=[TrackedMetric(name="log_loss", margin=0.001, tolerance=0.005)],
            segments=POLICY.segments,
        ),
    ),
    Case(
        "a lower-is-better metric that went up beyond the tolerance fails",
        with_(overall=[comparison("log_loss", candidate=0.35, delta=0.03, half_width=0.004)]),
        Decision.FAIL,
        None,
        Policy(
            metrics=[TrackedMetric(name="log_loss", margin=0.001, tolerance=0.005)],
            segments=POLICY.segments,
        ),
    ),
    Case(
        "a tracked metric that was not measured needs review",
        clean,
        Decision.NEEDS_REVIEW,
        "PR AUC is tracked by the policy but was not measured.",
        Policy(metrics=[TrackedMetric(name="roc_auc"), TrackedMetric(name="pr_auc")]),
    ),
    Case(
        "latency somewhat over the limit needs review",
        with_(latency=latency(ratio=1.4)),
        Decision.NEEDS_REVIEW,
        "Latency p99 is 1.40× production (16.8 ms vs 12.0 ms; one-sided 95% bounds 1.36× to "
        "1.44×), above the 1.25× limit.",
    ),
    Case(
        "latency more than twice the limit fails",
        with_(latency=latency(ratio=2.6)),
        Decision.FAIL,
    ),
    Case(
        "latency whose bounds straddle the limit is too noisy to judge and says so",
        with_(latency=latency(ratio=1.2, spread=0.3)),
        Decision.NEEDS_REVIEW,
        "Latency could not be judged: too noisy. The p99 ratio is 1.20× (one-sided 95% bounds "
        "0.84× to 1.56×), on both sides of the 1.25× limit; comment /retest to measure again on "
        "a quieter machine.",
    ),
    Case(
        "a batch throughput regression reaches the verdict",
        with_(
            latency=latency(ratio=1.0).model_copy(
                update={
                    "batch_time": RatioBounds(ratio=30.0, low=25.0, high=33.0),
                    "candidate_rows_per_s_low": 2_000.0,
                }
            )
        ),
        Decision.FAIL,
        None,
    ),
    Case(
        "a slower batch is fine when the candidate still clears the throughput floor",
        with_(
            latency=latency(ratio=1.0).model_copy(
                update={
                    "batch_time": RatioBounds(ratio=30.0, low=25.0, high=33.0),
                    "candidate_rows_per_s_low": 250_000.0,
                }
            )
        ),
        Decision.AUTO_PROMOTE_ELIGIBLE,
        None,
    ),
    Case(
        "latency measured without rounds has no bounds and is not guessed",
        with_(latency=latency(ratio=1.0).model_copy(update={"p99": None})),
        Decision.NEEDS_REVIEW,
    ),
    Case(
        "latency not measured needs review when the policy asks for it",
        with_(latency=None),
        Decision.NEEDS_REVIEW,
        "Latency was not measured.",
    ),
    Case(
        "latency not measured is fine when the policy turns it off",
        with_(latency=None),
        Decision.AUTO_PROMOTE_ELIGIBLE,
        None,
        Policy(
            metrics=POLICY.metrics, segments=POLICY.segments, latency=LatencyPolicy(enabled=False)
        ),
    ),
    Case(
        "calibration worse than allowed needs review",
        with_(calibration=calibration(ece_delta=0.03)),
        Decision.NEEDS_REVIEW,
        "Calibration worsened: ECE rose by +0.030 (0.031 → 0.061), above the allowed +0.020.",
    ),
    Case(
        "calibration more than twice worse than allowed fails",
        with_(calibration=calibration(ece_delta=0.05)),
        Decision.FAIL,
    ),
    Case(
        "too many rows changing side of the decision threshold needs review",
        with_(calibration=calibration(crossing=0.07)),
        Decision.NEEDS_REVIEW,
        "At threshold 0.50, 7.0% of rows change side (allowed 5.0%).",
    ),
    Case(
        "a claimed metric far from the reproduced one needs review",
        with_(
            claimed=[
                ClaimCheck(
                    metric="roc_auc",
                    claimed=0.91,
                    reproduced=0.861,
                    difference=-0.049,
                    flagged=True,
                )
            ]
        ),
        Decision.NEEDS_REVIEW,
        "Claimed ROC AUC 0.910 but Shipyard reproduced 0.861 (-0.049), beyond the 0.020 tolerance.",
    ),
    Case(
        "training ids found in the benchmark fail",
        with_(
            leakage=LeakageCheck(
                id_column="customer_id",
                manifest_ids=100,
                overlapping=2,
                examples=["c-17", "c-99"],
                passed=False,
            )
        ),
        Decision.FAIL,
        "Training data leaks into the benchmark: 2 ids in data_manifest.txt are benchmark rows "
        "(e.g. c-17, c-99).",
    ),
    Case(
        "a run that timed out fails",
        lambda: make_report(status=RunStatus.TIMED_OUT, error="limit of 600 s reached"),
        Decision.FAIL,
        "The evaluation timed out: limit of 600 s reached. Nothing was judged; comment /retest "
        "to run it again.",
    ),
    Case(
        "a run that stopped with an error fails",
        lambda: make_report(status=RunStatus.ERROR, error="weights/model.onnx: invalid graph"),
        Decision.FAIL,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_verdict(case: Case) -> None:
    verdict = decide(report=case.report(), policy=case.policy)
    assert verdict.decision is case.decision, verdict.reasons
    if case.reason is not None:
        assert case.reason in verdict.reasons
    assert verdict.reasons


def test_a_policy_can_make_any_segment_regression_a_failure() -> None:
    report = clean().model_copy(
        update={"segments": [segment("region", "emea", delta=-0.041, half_width=0.019)]}
    )
    strict = POLICY.model_copy(
        update={"segments": POLICY.segments.model_copy(update={"on_regression": "fail"})}
    )
    assert decide(report=report, policy=strict).decision is Decision.FAIL


def test_failures_are_listed_before_what_passed() -> None:
    report = clean().model_copy(
        update={"segments": [segment("region", "emea", delta=-0.041, half_width=0.019)]}
    )
    reasons = decide(report=report, policy=POLICY).reasons
    assert reasons[0].startswith("Segment region=emea regressed")
    assert any(reason.startswith("ROC AUC improved") for reason in reasons[1:])


def test_many_regressed_segments_are_summarised_not_listed_one_by_one() -> None:
    report = make_report(n_segments=300, regressed=200)
    reasons = decide(report=report, policy=POLICY).reasons
    segment_reasons = [r for r in reasons if r.startswith("Segment ")]
    assert len(segment_reasons) == MAX_SEGMENT_REASONS
    assert f"{200 - MAX_SEGMENT_REASONS} more segments regressed; see the segment table." in reasons
    # The worst regression comes first.
    assert segment_reasons[0].startswith("Segment plan=value-199 regressed")


def test_the_same_report_always_gets_the_same_verdict() -> None:
    report = make_report(n_segments=50, regressed=3)
    assert decide(report=report, policy=POLICY) == decide(report=report, policy=POLICY)


def test_a_lower_is_better_metric_that_rose_is_worded_as_rising() -> None:
    report = make_report(
        overall=[comparison("log_loss", candidate=0.35, delta=0.03, half_width=0.004)]
    )
    policy = Policy(metrics=[TrackedMetric(name="log_loss", margin=0.001, tolerance=0.005)])
    verdict = decide(report=report, policy=policy)
    assert (
        "Log loss (lower is better) rose by 0.030 (95% CI +0.026 to +0.034): a regression beyond "
        "the 0.005 tolerance." in verdict.reasons
    )
