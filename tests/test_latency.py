"""Latency is measured for candidate and production interleaved, with ordered percentiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from evaluators.artifacts.inference import Runner, open_runner
from evaluators.artifacts.latency import measure_latency
from evaluators.candidate import parse_model_config
from evaluators.judgement.verdict import Severity, judge_latency
from evaluators.policy import LatencyPolicy

REGISTRY = Path(__file__).resolve().parent.parent / "fixtures" / "registry"
BENCHMARK = REGISTRY.parent / "benchmark" / "churn_benchmark.parquet"


class FakeClock:
    """A nanosecond clock that only moves when a model 'works'."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class SteppedRunner:
    """Takes `ms_per_call` + `ms_per_row` of fake time per call and records who ran."""

    def __init__(
        self,
        name: str,
        clock: FakeClock,
        calls: list[str],
        *,
        ms_per_call: float,
        ms_per_row: float = 0.0,
    ) -> None:
        self.name, self.clock, self.calls = name, clock, calls
        self.ms_per_call, self.ms_per_row = ms_per_call, ms_per_row

    @property
    def features(self) -> list[str]:
        return ["x"]

    def predict(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        self.calls.append(self.name)
        self.clock.now += int((self.ms_per_call + self.ms_per_row * len(x)) * 1e6)
        return np.zeros(len(x))


def _frame(n: int = 1000) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(n, dtype=float)})


def _fixture_runner(variant: str) -> Runner:
    model_dir = REGISTRY / variant / "models" / "churn"
    return open_runner(
        model_dir=model_dir, config=parse_model_config((model_dir / "config.yaml").read_text())
    )


def test_a_candidate_three_times_slower_has_a_p99_ratio_of_three() -> None:
    clock, calls = FakeClock(), list[str]()
    section = measure_latency(
        candidate=SteppedRunner("candidate", clock, calls, ms_per_call=3.0, ms_per_row=0.01),
        baseline=SteppedRunner("baseline", clock, calls, ms_per_call=1.0, ms_per_row=0.01),
        frame=_frame(),
        policy=LatencyPolicy(
            concurrency=1, requests=50, batch_size=100, throughput_rows=100, max_p99_ratio=1.25
        ),
        clock=clock,
    )
    assert section.candidate.single_p99_ms == pytest.approx(3.01)
    assert section.baseline.single_p99_ms == pytest.approx(1.01)
    assert section.p99_ratio == pytest.approx(3.01 / 1.01)
    assert not section.within_tolerance
    assert section.candidate.batch_p50_ms == pytest.approx(4.0)
    assert section.baseline.throughput_rows_per_s == pytest.approx(100 / 0.002)


def test_requests_alternate_between_candidate_and_baseline_in_random_order() -> None:
    clock, calls = FakeClock(), list[str]()
    measure_latency(
        candidate=SteppedRunner("candidate", clock, calls, ms_per_call=1.0),
        baseline=SteppedRunner("baseline", clock, calls, ms_per_call=1.0),
        frame=_frame(),
        policy=LatencyPolicy(concurrency=1, requests=40, batch_size=10),
        clock=clock,
    )
    timed = calls[14:]  # after 5 single + 2 batch warm-up calls per model
    pairs = [tuple(timed[i : i + 2]) for i in range(0, len(timed), 2)]
    assert all(set(pair) == {"candidate", "baseline"} for pair in pairs)
    firsts = {pair[0] for pair in pairs}
    assert firsts == {"candidate", "baseline"}


def test_percentiles_are_ordered_and_every_single_request_is_kept() -> None:
    section = measure_latency(
        candidate=_fixture_runner("candidate_better"),
        baseline=_fixture_runner("production"),
        frame=pd.read_parquet(BENCHMARK).iloc[:1000],
        policy=LatencyPolicy(concurrency=2, requests=60, batch_size=64),
    )
    assert (section.concurrency, section.batch_size, section.requests) == (2, 64, 60)
    for stats in (section.candidate, section.baseline):
        assert 0 < stats.single_p50_ms <= stats.single_p95_ms <= stats.single_p99_ms
        assert 0 < stats.batch_p50_ms <= stats.batch_p95_ms <= stats.batch_p99_ms
        assert stats.throughput_rows_per_s > 0
        assert len(stats.single_samples_ms) == 60
    assert section.p99_ratio == pytest.approx(
        section.candidate.single_p99_ms / section.baseline.single_p99_ms
    )


def test_the_slower_fixture_is_measured_slower_than_production() -> None:
    section = measure_latency(
        candidate=_fixture_runner("candidate_slower"),
        baseline=_fixture_runner("production"),
        frame=pd.read_parquet(BENCHMARK).iloc[:2000],
        policy=LatencyPolicy(
            concurrency=1,
            requests=1000,
            batch_size=256,
            max_p99_ratio=1.25,
            floor_ms=0,
            # Judge the ratio alone: on a fast machine the slower fixture still clears the
            # default 10,000 rows/s floor and would be "fast enough whatever the ratio".
            min_rows_per_s=0,
        ),
    )
    assert section.candidate.single_p50_ms > 1.5 * section.baseline.single_p50_ms
    assert section.candidate.batch_p50_ms > 5 * section.baseline.batch_p50_ms
    assert section.candidate.throughput_rows_per_s < section.baseline.throughput_rows_per_s / 5
    # Judged out of tolerance by its batch time. (Its single-request p99 came out 1.0-1.15x
    # production unless scipy.stats had been imported in the process, when it was > 1.25x:
    # on these 0.07 ms models the single-request tail is not a property of the model.)
    assert section.batch_time is not None and section.batch_time.low > 1.25
    assert not section.within_tolerance


def test_steady_timings_give_tight_bounds_on_each_ratio() -> None:
    clock, calls = FakeClock(), list[str]()
    section = measure_latency(
        candidate=SteppedRunner("candidate", clock, calls, ms_per_call=3.0, ms_per_row=0.01),
        baseline=SteppedRunner("baseline", clock, calls, ms_per_call=1.0, ms_per_row=0.01),
        frame=_frame(),
        policy=LatencyPolicy(concurrency=1, requests=100, batch_size=100, throughput_rows=500),
        clock=clock,
    )
    assert section.rounds == 20
    assert section.p99 is not None and section.batch_time is not None
    assert section.p99.low == section.p99.high == pytest.approx(3.01 / 1.01)
    assert section.batch_time.low == section.batch_time.high == pytest.approx(8.0 / 6.0)
    assert section.candidate_rows_per_s_low == pytest.approx(500 / 0.008)


class JitteryRunner(SteppedRunner):
    """Each call takes a heavy-tailed random time: a machine busy with other work."""

    def __init__(self, name: str, clock: FakeClock, calls: list[str], seed: int) -> None:
        super().__init__(name, clock, calls, ms_per_call=1.0)
        self.rng = np.random.default_rng(seed)

    def predict(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        self.ms_per_call = float(np.exp(self.rng.normal(0.0, 1.0)))
        return super().predict(x)


def test_identical_models_on_a_jittery_machine_are_too_noisy_to_judge_not_a_finding() -> None:
    clock, calls = FakeClock(), list[str]()
    policy = LatencyPolicy(concurrency=1, requests=300, max_p99_ratio=1.0, floor_ms=0)
    section = measure_latency(
        candidate=JitteryRunner("candidate", clock, calls, seed=3),
        baseline=JitteryRunner("baseline", clock, calls, seed=4),
        frame=_frame(),
        policy=policy,
        clock=clock,
    )
    p99 = judge_latency(section, policy=policy)[0]
    assert p99.severity is Severity.REVIEW
    assert p99.text.startswith("Latency could not be judged: too noisy.")
