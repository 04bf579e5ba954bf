"""Latency is measured in a worker process, so an untrusted model never loads in the bot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evaluators.artifacts.latency_isolated import measure_latency_isolated
from evaluators.candidate import parse_model_config
from evaluators.policy import LatencyPolicy

REGISTRY = Path(__file__).resolve().parents[1] / "fixtures/registry"
BENCHMARK = Path(__file__).resolve().parents[1] / "fixtures/benchmark/churn_benchmark.parquet"


def _model(variant: str) -> tuple[Path, object]:
    directory = REGISTRY / variant / "models/churn"
    return directory, parse_model_config((directory / "config.yaml").read_text())


def test_latency_of_both_models_comes_back_from_the_worker() -> None:
    cand_dir, cand_config = _model("candidate_slower")
    base_dir, base_config = _model("production")
    section = measure_latency_isolated(
        candidate_dir=cand_dir,
        candidate_config=cand_config,  # type: ignore[arg-type]
        baseline_dir=base_dir,
        baseline_config=base_config,  # type: ignore[arg-type]
        frame=pd.read_parquet(BENCHMARK).head(500),
        policy=LatencyPolicy(requests=200, concurrency=1, batch_size=64),
        timeout_s=120,
        memory_mb=2048,
    )
    assert section is not None
    assert section.requests == 200 and section.batch_size == 64
    assert 0 < section.candidate.single_p50_ms <= section.candidate.single_p99_ms
    assert section.candidate.batch_p50_ms > section.baseline.batch_p50_ms  # 800 trees vs a line


def test_a_worker_that_runs_out_of_time_reports_nothing_rather_than_hanging() -> None:
    cand_dir, cand_config = _model("candidate_slower")
    base_dir, base_config = _model("production")
    section = measure_latency_isolated(
        candidate_dir=cand_dir,
        candidate_config=cand_config,  # type: ignore[arg-type]
        baseline_dir=base_dir,
        baseline_config=base_config,  # type: ignore[arg-type]
        frame=pd.read_parquet(BENCHMARK).head(500),
        policy=LatencyPolicy(requests=100_000, concurrency=1, batch_size=64),
        timeout_s=0.5,
        memory_mb=2048,
    )
    assert section is None
