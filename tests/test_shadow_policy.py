"""The shadow policy: defaults (existing names and values kept), validation messages, the
segment columns and flip-rate limit it falls back to, and the published schema."""

from __future__ import annotations

import pytest

from evaluators.policy import Policy, PolicyError, parse_policy, policy_json_schema
from evaluators.statistics.sample_size import size_flip_rate

BENCHMARK = "benchmark: {uri: b.parquet, sha256: '" + "0" * 64 + "', segment_columns: [region]}\n"


def test_defaults_keep_the_existing_names_and_values() -> None:
    shadow = Policy().shadow
    assert (shadow.min_duration_hours, shadow.min_samples) == (24, 10_000)
    assert shadow.required is False and shadow.mirror_share == 1.0
    assert (shadow.max_duration_hours, shadow.min_coverage) == (72, 0.99)
    assert (shadow.drift.psi_warn, shadow.drift.psi_fail) == (0.1, 0.25)
    assert (shadow.anomalies.output_min, shadow.anomalies.output_max) == (0.0, 1.0)
    assert shadow.segment_min_samples == 200 and shadow.power == 0.8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "shadow: {min_duration_hours: 48, max_duration_hours: 24}",
            "max_duration_hours (24.0) must be at least min_duration_hours (48.0)",
        ),
        (
            "shadow: {drift: {psi_warn: 0.3, psi_fail: 0.2}}",
            "psi_fail (0.2) must be at least psi_warn (0.3)",
        ),
        (
            "shadow: {anomalies: {output_min: 1, output_max: 0}}",
            "output_max (0.0) must be above output_min (1.0)",
        ),
        (
            "shadow: {max_flip_rate: 0.6, flip_rate_effect: 0.5}",
            "the flip-rate limit plus flip_rate_effect must be below 1",
        ),
        ("shadow: {mirror_share: 0}", "greater than 0"),
        ("shadow: {min_coverage: 1.5}", "less than or equal to 1"),
        ("shadow: {min_sample: 5}", "min_sample"),
    ],
    ids=[
        "max duration under min",
        "fail level under warn level",
        "empty output range",
        "flip rate limit plus effect reaches 1",
        "nothing mirrored",
        "coverage above 100%",
        "a typo is an error",
    ],
)
def test_invalid_shadow_policies_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as error:
        parse_policy(text)
    assert message in str(error.value)
    assert "line 1" in str(error.value)


def test_required_segment_columns_default_to_the_benchmarks() -> None:
    assert parse_policy(BENCHMARK).shadow_segment_columns() == ["region"]
    assert parse_policy(BENCHMARK + "shadow: {segment_columns: []}").shadow_segment_columns() == []
    assert Policy().shadow_segment_columns() == []


def test_the_flip_rate_limit_defaults_to_the_benchmark_threshold_shift() -> None:
    assert parse_policy("calibration: {max_threshold_shift: 0.2}").shadow_max_flip_rate() == 0.2
    text = "calibration: {max_threshold_shift: 0.2}\nshadow: {max_flip_rate: 0.03}"
    assert parse_policy(text).shadow_max_flip_rate() == 0.03


def test_the_schema_editors_use_describes_the_shadow_fields() -> None:
    schema = policy_json_schema()
    shadow = schema["$defs"]["ShadowPolicy"]["properties"]  # type: ignore[index]
    for name in ("required", "mirror_share", "max_duration_hours", "min_coverage", "power"):
        assert name in shadow
    assert "description" in shadow["max_duration_hours"]


def test_a_benchmark_threshold_shift_check_turned_off_does_not_invalidate_the_policy() -> None:
    # max_threshold_shift: 1.0 turns the benchmark's check off; shadow derives its flip limit
    # from it, and a policy that never mentions shadow must stay valid.
    policy = parse_policy("calibration:\n  max_threshold_shift: 1.0\n")
    assert policy.shadow_max_flip_rate() == 1.0
    assert (
        size_flip_rate(
            limit=1.0, effect=policy.shadow.flip_rate_effect, confidence=0.95, power=0.8
        ).samples
        == 0
    )
