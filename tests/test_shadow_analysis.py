"""Shadow analysis end to end on real models: the fixture registry's ONNX models score the
benchmark's rows, logged the way the gateway logs them (features as JSON, request ids, times),
then analyse_shadow + decide_shadow say what a reviewer would see."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluators.artifacts.inference import feature_matrix, open_runner
from evaluators.candidate import parse_model_config
from evaluators.judgement.shadow import ShadowStatus, decide_shadow
from evaluators.policy import Policy, parse_policy
from evaluators.statistics import shadow_analysis
from evaluators.statistics.drift import ReferenceProfile, build_profile
from evaluators.statistics.shadow_analysis import analyse_shadow
from evaluators.statistics.shadow_evidence import LatencyQuantiles, LatencyReading, NoData
from gateway import names

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "fixtures/registry"
SEGMENTS = ["entity_type", "industry", "region"]
ROWS = 12_000
FAST = LatencyReading(
    shadow=LatencyQuantiles(2.1, 4.0, 6.5), production=LatencyQuantiles(2.0, 3.9, 6.0)
)


@pytest.fixture(scope="module")
def benchmark() -> pd.DataFrame:
    return pd.read_parquet(ROOT / "fixtures/benchmark/churn_benchmark.parquet")


@pytest.fixture(scope="module")
def features() -> list[str]:
    config = parse_model_config((REGISTRY / "production/models/churn/config.yaml").read_text())
    return list(config.features)


@pytest.fixture(scope="module")
def traffic(benchmark: pd.DataFrame) -> pd.DataFrame:
    return benchmark.iloc[50_000 : 50_000 + ROWS].reset_index(drop=True)


@pytest.fixture(scope="module")
def profile(benchmark: pd.DataFrame, features: list[str]) -> ReferenceProfile:
    return build_profile(benchmark, columns=features + SEGMENTS)


@pytest.fixture(scope="module")
def policy() -> Policy:
    text = (REGISTRY / "shipyard.yml").read_text() + "shadow: {min_samples: 5000}\n"
    return parse_policy(text)


def scores(variant: str, rows: pd.DataFrame) -> np.ndarray:  # type: ignore[type-arg]
    model_dir = REGISTRY / variant / "models/churn"
    config = parse_model_config((model_dir / "config.yaml").read_text())
    runner = open_runner(model_dir=model_dir, config=config)
    return np.asarray(runner.predict(feature_matrix(rows, list(config.features))), dtype=float)


def log(rows: pd.DataFrame, score: np.ndarray, features: list[str]) -> pd.DataFrame:  # type: ignore[type-arg]
    """Rows as the gateway's prediction log holds them (model features as float32, as it logs)."""
    logged = rows[features].astype(np.float32).astype(float)
    texts = [
        json.dumps({**dict(zip(features, values, strict=True)), **segments})
        for values, segments in zip(
            logged.itertuples(index=False), rows[SEGMENTS].to_dict("records"), strict=True
        )
    ]
    start = pd.Timestamp("2026-12-01", tz="UTC")
    return pd.DataFrame(
        {
            names.LOG_REQUEST_ID: [f"req-{i:06d}" for i in range(len(rows))],
            names.LOG_TIME: start + pd.to_timedelta(np.arange(len(rows)) * 7, unit="s"),
            names.LOG_FEATURES: texts,
            names.LOG_SCORE: score,
            names.LOG_ERROR: pd.Series([None] * len(rows), dtype=object),
        }
    )


def mirrored(production: pd.DataFrame, shadow_score: np.ndarray) -> pd.DataFrame:  # type: ignore[type-arg]
    """The shadow's log: 1 in 400 requests dropped by the mirror, 1 in 100 logged twice."""
    shadow = production.copy()
    shadow[names.LOG_SCORE] = shadow_score
    shadow[names.LOG_TIME] = shadow[names.LOG_TIME] + pd.Timedelta(milliseconds=4)
    shadow = shadow[np.arange(len(shadow)) % 400 != 0]
    return pd.concat([shadow, shadow.iloc[::100]], ignore_index=True)


def test_the_evaluators_read_the_log_columns_the_gateway_writes() -> None:
    assert (
        shadow_analysis.REQUEST_ID,
        shadow_analysis.TIME,
        shadow_analysis.FEATURES,
        shadow_analysis.SCORE,
        shadow_analysis.ERROR,
    ) == (
        names.LOG_REQUEST_ID,
        names.LOG_TIME,
        names.LOG_FEATURES,
        names.LOG_SCORE,
        names.LOG_ERROR,
    )


def test_a_better_candidate_passes_after_a_day_when_its_segment_flips_are_allowed(
    traffic: pd.DataFrame, features: list[str], profile: ReferenceProfile, policy: Policy
) -> None:
    production = log(traffic, scores("production", traffic), features)
    shadow = mirrored(production, scores("candidate_better", traffic))
    evidence = analyse_shadow(
        production=production,
        shadow=shadow,
        policy=policy,
        profile=profile,
        elapsed=timedelta(hours=25),
        latency=FAST,
    )
    assert evidence.paired == ROWS - ROWS // 400
    assert evidence.duplicates == len(shadow) - evidence.paired
    assert evidence.coverage == pytest.approx(1 - 1 / 400)
    assert {s.column for s in evidence.segments} == set(SEGMENTS)
    assert len(evidence.segments) == 4 + 8 + 5 and not evidence.missing_segment_columns
    assert max(d.psi for d in evidence.drift) < 0.01
    # The tree model moves a quarter of public-sector decisions (the linear production model's
    # weakest segment): above the 20% limit, so a person weighs it ...
    decision = decide_shadow(policy=policy, evidence=evidence)
    assert decision.status is ShadowStatus.INCONCLUSIVE, "\n".join(decision.lines)
    assert any(
        line.startswith("Flips in a segment: 24.")
        and "(entity_type=public_sector) (limit 20.0%)" in line
        for line in decision.lines
    )
    # ... and with a policy that allows it, shadow passes.
    allowing = policy.model_copy(
        update={
            "shadow": policy.shadow.model_copy(
                update={"max_flip_rate": 0.3, "flip_rate_effect": 0.02}
            )
        }
    )
    decision = decide_shadow(policy=allowing, evidence=evidence)
    assert decision.status is ShadowStatus.PASSED, "\n".join(decision.lines)
    assert decision.conclusion == "success"
    text = "\n".join(decision.lines)
    assert "Segments: all 17 required segments have at least 200 paired requests." in text
    assert "Mirror coverage: 99.75% of 12,000 production requests paired" in text
    assert "decisions flip at threshold 0.50 (all requests)" in text

    early = decide_shadow(
        policy=policy,
        evidence=analyse_shadow(
            production=production,
            shadow=shadow,
            policy=policy,
            profile=profile,
            elapsed=timedelta(hours=6),
            latency=NoData("empty result"),
        ),
    )
    assert early.status is ShadowStatus.PENDING and early.conclusion is None


def test_a_candidate_that_flips_most_decisions_fails(
    traffic: pd.DataFrame, features: list[str], profile: ReferenceProfile, policy: Policy
) -> None:
    production = log(traffic, scores("production", traffic), features)
    shadow = mirrored(production, scores("candidate_miscalibrated", traffic))
    evidence = analyse_shadow(
        production=production,
        shadow=shadow,
        policy=policy,
        profile=profile,
        elapsed=timedelta(hours=25),
        latency=FAST,
    )
    decision = decide_shadow(policy=policy, evidence=evidence)
    assert decision.status is ShadowStatus.FAILED
    assert any(line.startswith("Flips: 7") and "limit 20.0%" in line for line in decision.lines)


def test_drifted_traffic_fails_with_the_feature_named(
    traffic: pd.DataFrame, features: list[str], profile: ReferenceProfile, policy: Policy
) -> None:
    drifted = traffic.copy()
    drifted["tenure_months"] = drifted["tenure_months"] * 3 + 12
    production = log(drifted, scores("production", drifted), features)
    shadow = mirrored(production, scores("candidate_better", drifted))
    evidence = analyse_shadow(
        production=production,
        shadow=shadow,
        policy=policy,
        profile=profile,
        elapsed=timedelta(hours=25),
        latency=FAST,
    )
    decision = decide_shadow(policy=policy, evidence=evidence)
    assert decision.status is ShadowStatus.FAILED
    assert any(line.startswith("Input drift in tenure_months: PSI ") for line in decision.lines)


def test_a_broken_candidate_fails_in_the_first_hours(
    traffic: pd.DataFrame, features: list[str], profile: ReferenceProfile, policy: Policy
) -> None:
    production = log(traffic, scores("production", traffic), features)
    constant = mirrored(production, np.full(ROWS, 0.5))
    failing = mirrored(production, scores("candidate_better", traffic))
    failing.loc[failing.index[::20], names.LOG_ERROR] = "inference failed"
    failing.loc[failing.index[::20], names.LOG_SCORE] = np.nan
    for shadow, expected in [
        (constant, "The shadow returned the same score for all"),
        (failing, "The shadow failed 599 of 11,970 requests (5.00%; allowed 1.0%)."),
    ]:
        evidence = analyse_shadow(
            production=production,
            shadow=shadow,
            policy=policy,
            profile=profile,
            elapsed=timedelta(hours=2),
            latency=NoData(),
        )
        decision = decide_shadow(policy=policy, evidence=evidence)
        assert decision.status is ShadowStatus.FAILED
        assert any(line.startswith(expected) for line in decision.lines), "\n".join(decision.lines)


def test_segments_not_in_the_logged_features_keep_shadow_from_passing(
    traffic: pd.DataFrame, features: list[str], profile: ReferenceProfile, policy: Policy
) -> None:
    """The gateway logs the model's features only; a required segment column must be logged
    too, or shadow cannot count its segments and never passes."""
    production = log(traffic, scores("production", traffic), features)
    production[names.LOG_FEATURES] = [
        json.dumps({k: v for k, v in json.loads(t).items() if k not in SEGMENTS})
        for t in production[names.LOG_FEATURES]
    ]
    shadow = mirrored(production, scores("candidate_better", traffic))
    evidence = analyse_shadow(
        production=production,
        shadow=shadow,
        policy=policy,
        profile=build_profile(traffic, columns=features),
        elapsed=timedelta(hours=80),
        latency=FAST,
    )
    assert evidence.missing_segment_columns == SEGMENTS
    decision = decide_shadow(policy=policy, evidence=evidence)
    assert decision.status is ShadowStatus.INCONCLUSIVE and decision.conclusion == "action_required"
    assert (
        "Segment column region is not in the logged features: its segments cannot be counted."
        in decision.lines
    )


def test_before_any_traffic_shadow_is_pending_and_never_passes(
    profile: ReferenceProfile, policy: Policy
) -> None:
    empty = pd.DataFrame(
        {
            names.LOG_REQUEST_ID: pd.Series([], dtype="string"),
            names.LOG_TIME: pd.Series([], dtype="datetime64[us, UTC]"),
            names.LOG_FEATURES: pd.Series([], dtype="string"),
            names.LOG_SCORE: pd.Series([], dtype=float),
            names.LOG_ERROR: pd.Series([], dtype="string"),
        }
    )
    for hours, expected in [(1, ShadowStatus.PENDING), (100, ShadowStatus.INCONCLUSIVE)]:
        evidence = analyse_shadow(
            production=empty,
            shadow=empty,
            policy=policy,
            profile=profile,
            elapsed=timedelta(hours=hours),
            latency=NoData(),
        )
        assert evidence.paired == 0 and not evidence.missing_segment_columns
        decision = decide_shadow(policy=policy, evidence=evidence)
        assert decision.status is expected
        assert "Mirror coverage: — of 0 production requests paired (minimum 99.00%)." in (
            decision.lines
        )
        assert not any(line.startswith("Flips") for line in decision.lines)
