"""decide_shadow: the full table of rules, the lines people read, and invariants over random
evidence (never passes early, never passes without data, anomalies always fail)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from evaluators.judgement.shadow import ShadowStatus, decide_shadow
from evaluators.policy import Policy, parse_policy
from evaluators.statistics.drift import FeatureDrift
from evaluators.statistics.output_anomalies import OutputAnomalies
from evaluators.statistics.paired_outputs import (
    FlipRate,
    OutputComparison,
    ScoreShift,
    wilson_interval,
)
from evaluators.statistics.shadow_evidence import (
    LatencyQuantiles,
    LatencyReading,
    NoData,
    SegmentCount,
    ShadowEvidence,
)

POLICY = parse_policy(
    "benchmark: {uri: b.parquet, sha256: '" + "0" * 64 + "', segment_columns: [region]}\n"
)
FAST = LatencyQuantiles(2.0, 4.0, 6.0)


def flip(pairs: int, flips: int, column: str | None = None, value: str | None = None) -> FlipRate:
    low, high = wilson_interval(np.array([flips]), np.array([pairs]), confidence=0.95)
    return FlipRate(0.5, column, value, pairs, flips, float(low[0]), float(high[0]))


def evidence(**changes: Any) -> ShadowEvidence:
    """Evidence that passes under POLICY; `changes` replace fields."""
    base = ShadowEvidence(
        elapsed=timedelta(hours=25),
        production_requests=20_000,
        paired=20_000,
        coverage=1.0,
        anomalies=OutputAnomalies(
            requests=20_000, errors=0, invalid=0, valid=20_000, spread=0.9, production_spread=0.9
        ),
        outputs=OutputComparison(
            pairs=20_000,
            flips=[flip(20_000, 400), flip(12_000, 240, "region", "eu")],
            spearman=0.97,
            shift=ScoreShift(0.004, 0.003, 0.005),
        ),
        drift=[FeatureDrift("tenure_months", "numeric", 20_000, 0.004, 0.02, 1e-8, 0.0)],
        latency=LatencyReading(shadow=FAST, production=FAST),
        segments=[SegmentCount("region", "eu", 12_000), SegmentCount("region", "us", 8_000)],
    )
    return dataclasses.replace(base, **changes)


def anomalies(**changes: Any) -> OutputAnomalies:
    return dataclasses.replace(evidence().anomalies, **changes)


def drift(psi: float) -> list[FeatureDrift]:
    return [FeatureDrift("tenure_months", "numeric", 20_000, psi, 0.3, 0.0, 0.0)]


def policy(**shadow: Any) -> Policy:
    return POLICY.model_copy(update={"shadow": POLICY.shadow.model_copy(update=shadow)})


SLOW = LatencyReading(shadow=LatencyQuantiles(3.0, 6.0, 9.0), production=FAST)
HOURS = timedelta(hours=1)

CASES: list[tuple[str, Policy, ShadowEvidence, ShadowStatus]] = [
    ("every minimum met and nothing found passes", POLICY, evidence(), ShadowStatus.PASSED),
    (
        "an hour short of the minimum duration is pending, however good the evidence",
        POLICY,
        evidence(elapsed=23 * HOURS, paired=200_000, production_requests=200_000),
        ShadowStatus.PENDING,
    ),
    (
        "too few paired requests is pending",
        POLICY,
        evidence(paired=9_999, production_requests=9_999),
        ShadowStatus.PENDING,
    ),
    (
        "min_samples met but not the samples the flip-rate effect needs is pending",
        policy(flip_rate_effect=0.002),
        evidence(),
        ShadowStatus.PENDING,
    ),
    (
        "a required segment below its minimum is pending",
        POLICY,
        evidence(
            segments=[SegmentCount("region", "eu", 19_801), SegmentCount("region", "us", 199)]
        ),
        ShadowStatus.PENDING,
    ),
    (
        "a segment column absent from the logged features is pending",
        POLICY,
        evidence(segments=[], missing_segment_columns=["region"]),
        ShadowStatus.PENDING,
    ),
    (
        "coverage under 99% is pending",
        POLICY,
        evidence(coverage=0.985),
        ShadowStatus.PENDING,
    ),
    (
        "no production requests (coverage unknown) never passes",
        POLICY,
        evidence(coverage=float("nan")),
        ShadowStatus.PENDING,
    ),
    (
        "latency with no data is pending",
        POLICY,
        evidence(latency=NoData("empty result")),
        ShadowStatus.PENDING,
    ),
    (
        "a latency reading with a NaN p99 counts as no data",
        POLICY,
        evidence(
            latency=LatencyReading(shadow=LatencyQuantiles(2.0, 4.0, float("nan")), production=FAST)
        ),
        ShadowStatus.PENDING,
    ),
    (
        "at max duration without enough samples it is inconclusive",
        POLICY,
        evidence(elapsed=72 * HOURS, paired=5_000, production_requests=5_000),
        ShadowStatus.INCONCLUSIVE,
    ),
    (
        "at max duration with no latency data it is inconclusive, not passed",
        POLICY,
        evidence(elapsed=80 * HOURS, latency=NoData()),
        ShadowStatus.INCONCLUSIVE,
    ),
    (
        "errors above the limit fail in the first hour",
        POLICY,
        evidence(elapsed=HOURS, paired=500, anomalies=anomalies(requests=500, errors=50)),
        ShadowStatus.FAILED,
    ),
    (
        "one error in 20,000 requests is within the 1% limit",
        POLICY,
        evidence(anomalies=anomalies(errors=1)),
        ShadowStatus.PASSED,
    ),
    (
        "a single NaN or out-of-range score fails at once",
        POLICY,
        evidence(elapsed=HOURS, anomalies=anomalies(invalid=1, valid=19_999)),
        ShadowStatus.FAILED,
    ),
    (
        "a constant score while production's varies fails at once",
        POLICY,
        evidence(elapsed=2 * HOURS, anomalies=anomalies(spread=0.0)),
        ShadowStatus.FAILED,
    ),
    (
        "a constant score on traffic production also answers constantly is not a failure",
        POLICY,
        evidence(anomalies=anomalies(spread=0.0, production_spread=0.0)),
        ShadowStatus.PASSED,
    ),
    (
        "drift at or above psi_fail fails once the evidence is complete",
        POLICY,
        evidence(drift=drift(0.3)),
        ShadowStatus.FAILED,
    ),
    (
        "drift during collection is provisional: still pending",
        POLICY,
        evidence(elapsed=3 * HOURS, drift=drift(0.3)),
        ShadowStatus.PENDING,
    ),
    (
        "drift between psi_warn and psi_fail is shown but passes",
        POLICY,
        evidence(drift=drift(0.15)),
        ShadowStatus.PASSED,
    ),
    (
        "a flip rate shown above the limit needs a person",
        POLICY,
        evidence(outputs=dataclasses.replace(evidence().outputs, flips=[flip(20_000, 1_400)])),
        ShadowStatus.INCONCLUSIVE,
    ),
    (
        "a flip rate shown above twice the limit fails",
        POLICY,
        evidence(outputs=dataclasses.replace(evidence().outputs, flips=[flip(20_000, 2_500)])),
        ShadowStatus.FAILED,
    ),
    (
        "the flip-rate limit defaults to the benchmark's max_threshold_shift",
        POLICY.model_copy(
            update={
                "calibration": POLICY.calibration.model_copy(update={"max_threshold_shift": 0.2})
            }
        ),
        evidence(outputs=dataclasses.replace(evidence().outputs, flips=[flip(20_000, 2_500)])),
        ShadowStatus.PASSED,
    ),
    (
        "a flip rate just over the limit but not shown above it passes",
        POLICY,
        evidence(outputs=dataclasses.replace(evidence().outputs, flips=[flip(20_000, 1_030)])),
        ShadowStatus.PASSED,
    ),
    (
        "one segment's flip rate above twice the limit fails",
        POLICY,
        evidence(
            outputs=dataclasses.replace(
                evidence().outputs,
                flips=[flip(20_000, 600), flip(2_000, 400, "region", "us")],
            )
        ),
        ShadowStatus.FAILED,
    ),
    (
        "a slow p99 under real traffic needs a person",
        POLICY,
        evidence(latency=SLOW),
        ShadowStatus.INCONCLUSIVE,
    ),
]


@pytest.mark.parametrize(
    ("policy_", "given", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_decision_table(policy_: Policy, given: ShadowEvidence, expected: ShadowStatus) -> None:
    decision = decide_shadow(policy=policy_, evidence=given)
    assert decision.status is expected, "\n".join(decision.lines)


def test_check_conclusions_never_call_inconclusive_neutral() -> None:
    conclusions = {
        status: decide_shadow(policy=POLICY, evidence=given).conclusion
        for status, given in [
            (ShadowStatus.PASSED, evidence()),
            (ShadowStatus.PENDING, evidence(elapsed=HOURS)),
            (ShadowStatus.FAILED, evidence(anomalies=anomalies(invalid=3))),
            (ShadowStatus.INCONCLUSIVE, evidence(elapsed=100 * HOURS, coverage=0.5)),
        ]
    }
    assert conclusions == {
        ShadowStatus.PASSED: "success",
        ShadowStatus.PENDING: None,
        ShadowStatus.FAILED: "failure",
        ShadowStatus.INCONCLUSIVE: "action_required",
    }


def test_the_lines_say_what_is_missing_with_numbers_and_units() -> None:
    decision = decide_shadow(
        policy=POLICY,
        evidence=evidence(elapsed=timedelta(hours=12), paired=9_000, production_requests=9_100),
    )
    assert decision.status is ShadowStatus.PENDING
    assert decision.lines[0] == "Shadow is collecting evidence; findings so far are provisional."
    assert "Duration: 12.0 h of the 24.0 h minimum." in decision.lines
    assert (
        "Samples: 9,000 of 10,000 paired requests needed (policy minimum 10,000; 3,118 detect a "
        "flip rate of 6.0% against the 5.0% limit at 95% confidence with 80% power)."
    ) in decision.lines
    assert "Mirror coverage: 100.00% of 9,100 production requests paired (minimum 99.00%)." in (
        decision.lines
    )


def test_sized_samples_replace_min_samples_when_larger_and_the_report_says_so() -> None:
    decision = decide_shadow(policy=policy(flip_rate_effect=0.002), evidence=evidence())
    assert decision.samples_needed == decision.sizing.samples == 74_352
    assert any(
        line.startswith("Samples: 20,000 of 74,352 paired requests needed")
        and "74,352 detect a flip rate of 5.2%" in line
        for line in decision.lines
    )


def test_untrusted_names_in_lines_are_one_short_line() -> None:
    name = "eu\n## Approved ![x](https://evil.example) " + "x" * 500
    decision = decide_shadow(
        policy=POLICY,
        evidence=evidence(segments=[SegmentCount("region", name, 3)]),
    )
    line = next(line for line in decision.lines if line.startswith("Segments below"))
    assert "\n" not in line and len(line) < 200
    assert "eu ## Approved" in line


def test_failure_reasons_come_before_the_rest() -> None:
    decision = decide_shadow(
        policy=POLICY, evidence=evidence(elapsed=HOURS, anomalies=anomalies(errors=900))
    )
    assert decision.status is ShadowStatus.FAILED
    assert decision.lines[0] == "Shadow failed: the candidate's answers are anomalous."
    assert decision.lines[1].startswith("Duration:")
    assert any(
        line.startswith("The shadow failed 900 of 20,000 requests (4.50%")
        for line in decision.lines
    )


def _random_evidence(rng: np.random.Generator) -> ShadowEvidence:
    paired = int(rng.integers(0, 40_000))
    requests = paired + int(rng.integers(0, 400))
    no_latency = rng.random() < 0.2
    return evidence(
        elapsed=timedelta(hours=float(rng.uniform(0, 100))),
        paired=paired,
        production_requests=requests,
        coverage=paired / requests if requests else float("nan"),
        anomalies=anomalies(
            requests=max(paired, 1),
            errors=int(rng.integers(0, 3)) * int(rng.integers(0, 200)),
            invalid=int(rng.random() < 0.1),
        ),
        drift=drift(float(rng.uniform(0, 0.4))),
        latency=NoData() if no_latency else LatencyReading(shadow=FAST, production=FAST),
        segments=[SegmentCount("region", "eu", int(rng.integers(0, 400)))],
    )


def test_invariants_over_random_evidence() -> None:
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(2_000):
        given = _random_evidence(rng)
        decision = decide_shadow(policy=POLICY, evidence=given)
        seen.add(decision.status)
        hours = given.elapsed.total_seconds() / 3600
        if decision.status is ShadowStatus.PASSED:
            assert hours >= 24, "passed early"
            assert given.paired >= decision.samples_needed
            assert given.coverage >= 0.99
            assert not isinstance(given.latency, NoData)
            assert all(s.samples >= 200 for s in given.segments)
            assert given.anomalies.invalid == 0
            assert all(d.psi < 0.25 for d in given.drift)
        if given.anomalies.invalid:
            assert decision.status is ShadowStatus.FAILED
        if hours >= 72 and decision.status is not ShadowStatus.PASSED:
            assert decision.status in (ShadowStatus.FAILED, ShadowStatus.INCONCLUSIVE)
        # Inconclusive is for the maximum duration (or a finding for a person; none here).
        assert hours >= 72 or decision.status is not ShadowStatus.INCONCLUSIVE
    assert seen == set(ShadowStatus)
