"""Realistic EvaluationReport objects for tests: small ones and ones with thousands of segments."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from evaluators.report import (
    BenchmarkInfo,
    CalibrationSection,
    CalibrationStats,
    ClaimCheck,
    Decision,
    EvaluationReport,
    Fingerprint,
    LatencySection,
    LatencyStats,
    LeakageCheck,
    MetricComparison,
    Outcome,
    RatioBounds,
    ReliabilityBin,
    RunStatus,
    SegmentComparison,
    StatisticsInfo,
    ThresholdShift,
    Verdict,
)

CREATED_AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "f1": True, "log_loss": False, "brier": False}
_OUTCOME_CYCLE = (Outcome.IMPROVED, Outcome.UNCHANGED, Outcome.IMPROVED, Outcome.TOO_SMALL)


def comparison(
    metric: str = "roc_auc",
    *,
    candidate: float = 0.861,
    delta: float = 0.024,
    half_width: float = 0.005,
    outcome: Outcome | None = None,
    method: str = "delong",
) -> MetricComparison:
    """One comparison; the outcome follows the interval (margin 0) unless given."""
    higher = HIGHER_IS_BETTER.get(metric, True)
    low, high = delta - half_width, delta + half_width
    if outcome is None:
        gain_low, gain_high = (low, high) if higher else (-high, -low)
        outcome = (
            Outcome.IMPROVED
            if gain_low > 0
            else Outcome.REGRESSED
            if gain_high < 0
            else Outcome.UNCHANGED
        )
    return MetricComparison(
        metric=metric,
        higher_is_better=higher,
        candidate=candidate,
        baseline=candidate - delta,
        delta=delta,
        ci_low=low,
        ci_high=high,
        method=method,
        p_value=0.001,
        adjusted_p_value=0.004,
        outcome=outcome,
    )


def segment(
    column: str = "region",
    value: str = "emea",
    *,
    delta: float = 0.02,
    half_width: float = 0.01,
    rows: int = 1_500,
    outcome: Outcome | None = None,
) -> SegmentComparison:
    """A segment judged on ROC AUC; TOO_SMALL segments keep their numbers but are not judged."""
    metric = comparison("roc_auc", candidate=0.85, delta=delta, half_width=half_width)
    judged = outcome if outcome is not None else metric.outcome
    if outcome is Outcome.TOO_SMALL:
        rows = min(rows, 120)
    return SegmentComparison(
        column=column,
        value=value,
        rows=rows,
        positives=rows // 10,
        metrics=[metric],
        outcome=judged,
    )


def segments(count: int, *, regressed: int = 1, seed: int = 7) -> list[SegmentComparison]:
    """`count` segments over a few columns: `regressed` regress, the rest cycle through outcomes."""
    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        column = ("region", "plan", "tenure_bucket")[index % 3]
        if index < regressed:
            out.append(
                segment(column, f"value-{index}", delta=-0.041 - 0.001 * index, half_width=0.019)
            )
            continue
        wanted = _OUTCOME_CYCLE[index % len(_OUTCOME_CYCLE)]
        delta = {
            Outcome.IMPROVED: float(rng.uniform(0.01, 0.05)),
            Outcome.UNCHANGED: float(rng.uniform(-0.003, 0.003)),
            Outcome.TOO_SMALL: float(rng.uniform(-0.05, 0.05)),
        }[wanted]
        out.append(
            segment(
                column,
                f"value-{index}",
                delta=delta,
                half_width=0.006,
                rows=int(rng.integers(300, 20_000)),
                outcome=Outcome.TOO_SMALL if wanted is Outcome.TOO_SMALL else None,
            )
        )
    return out


def calibration(*, ece_delta: float = 0.004, crossing: float = 0.02) -> CalibrationSection:
    def stats(offset: float, ece: float) -> CalibrationStats:
        bins = [
            ReliabilityBin(
                lower=i / 10,
                upper=(i + 1) / 10,
                count=0 if i == 9 else 400 - 30 * i,
                mean_predicted=i / 10 + 0.05,
                observed_rate=min(1.0, max(0.0, i / 10 + 0.05 + offset)),
            )
            for i in range(10)
        ]
        return CalibrationStats(
            ece_equal_width=ece, ece_equal_mass=ece + 0.002, brier=0.12, reliability=bins
        )

    return CalibrationSection(
        bins=10,
        candidate=stats(0.01, 0.031 + ece_delta),
        baseline=stats(-0.02, 0.031),
        ece_delta=ece_delta,
        threshold_shifts=[
            ThresholdShift(
                threshold=0.5,
                share_above_candidate=0.21,
                share_above_baseline=0.2,
                share_crossing=crossing,
            )
        ],
        within_tolerance=ece_delta <= 0.02 and crossing <= 0.05,
    )


def latency(
    *, ratio: float = 1.04, max_ratio: float = 1.25, spread: float = 0.03
) -> LatencySection:
    """Measured in 10 rounds; the ratios' one-sided bounds are `ratio` × (1 ± spread)."""
    rng = np.random.default_rng(3)

    def stats(p99: float) -> LatencyStats:
        samples = rng.gamma(4.0, p99 / 12, size=300)
        return LatencyStats(
            single_p50_ms=p99 / 3,
            single_p95_ms=p99 * 0.8,
            single_p99_ms=p99,
            batch_p50_ms=p99 * 4,
            batch_p95_ms=p99 * 6,
            batch_p99_ms=p99 * 7,
            throughput_rows_per_s=25_000 / p99,
            single_samples_ms=[round(float(s), 3) for s in samples],
        )

    return LatencySection(
        concurrency=2,
        batch_size=256,
        requests=300,
        candidate=stats(12.0 * ratio),
        baseline=stats(12.0),
        p99_ratio=ratio,
        max_p99_ratio=max_ratio,
        within_tolerance=ratio <= max_ratio,
        rounds=10,
        p99=RatioBounds(ratio=ratio, low=ratio * (1 - spread), high=ratio * (1 + spread)),
        candidate_p99_high_ms=12.0 * ratio * (1 + spread),
        throughput_rows=4096,
        batch_time=RatioBounds(ratio=ratio, low=ratio * (1 - spread), high=ratio * (1 + spread)),
        candidate_rows_per_s_low=25_000 / (12.0 * ratio) * (1 - spread),
    )


def fingerprint() -> Fingerprint:
    return Fingerprint(
        candidate_tree_sha256="a" * 64,
        candidate_weights_sha256="b" * 64,
        baseline_tree_sha256="c" * 64,
        baseline_weights_sha256="d" * 64,
        benchmark_sha256="e" * 64,
        policy_sha256="f" * 64,
        evaluator_version="0.1.0",
        digest="0123456789abcdef" * 4,
    )


def make_report(
    *,
    model: str = "churn",
    n_segments: int = 17,
    regressed: int = 1,
    overall: list[MetricComparison] | None = None,
    status: RunStatus = RunStatus.COMPLETED,
    error: str | None = None,
    decision: Decision = Decision.NEEDS_REVIEW,
) -> EvaluationReport:
    """A binary-classification report with every section filled in."""
    if status is not RunStatus.COMPLETED:
        return EvaluationReport(
            model=model,
            task="binary_classification",
            status=status,
            error=error,
            created_at=CREATED_AT,
            primary_metric="roc_auc",
            verdict=Verdict(decision=Decision.FAIL, reasons=["The evaluation did not complete."]),
        )
    overall = overall or [
        comparison("roc_auc", candidate=0.861, delta=0.024, half_width=0.005),
        comparison(
            "log_loss",
            candidate=0.312,
            delta=-0.011,
            half_width=0.004,
            method="paired bootstrap (1000 resamples)",
        ),
    ]
    return EvaluationReport(
        model=model,
        task="binary_classification",
        created_at=CREATED_AT,
        benchmark=BenchmarkInfo(
            uri="s3://benchmarks/churn-2026-10.parquet",
            sha256="e" * 64,
            rows=48_000,
            label_column="churned",
            segment_columns=["region", "plan", "tenure_bucket"],
        ),
        statistics=StatisticsInfo(
            confidence=0.95,
            interval_methods={m.metric: m.method for m in overall},
            correction="holm",
            bootstrap_resamples=1000,
            seed=0,
        ),
        primary_metric="roc_auc",
        overall=overall,
        segments=segments(n_segments, regressed=regressed),
        calibration=calibration(),
        latency=latency(),
        claimed=[
            ClaimCheck(
                metric="roc_auc", claimed=0.87, reproduced=0.861, difference=-0.009, flagged=False
            ),
            ClaimCheck(
                metric="training_time",
                claimed=320.0,
                reproduced=None,
                difference=None,
                flagged=False,
                note="not reproduced: the policy does not track this metric",
            ),
        ],
        leakage=LeakageCheck(
            id_column="customer_id", manifest_ids=1_204, overlapping=0, passed=True
        ),
        fingerprint=fingerprint(),
        verdict=Verdict(
            decision=decision,
            reasons=[
                "Segment region=value-0 regressed: ROC AUC -0.041 (95% CI -0.060 to -0.022).",
                "ROC AUC improved by +0.024 (95% CI +0.019 to +0.029), above the 0.002 margin.",
            ],
        ),
        durations_s={"load": 1.2, "metrics": 14.8, "latency": 6.1},
    )
