"""Two bot processes on one PostgreSQL: every due review window acts exactly once."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from bot.cli.registry_world import REGISTRY, RegistryWorld
from tests.bot_harness import wait_until
from tests.policies import policy_text
from tests.world_fixtures import FIXTURES, shared_app_keypair

# 50 PRs show the exactly-once claim under contention; 100 took 15 min on a loaded machine.
PRS = 50
# Every wait below has its own budget and together they fit inside the test's timeout, so a
# loaded machine fails one named wait, never pytest's blanket timeout mid-way.
WINDOWS_OPEN_S = 480
MERGED_S = 480
SETTLE_S = 60  # each of the two `pass_time` idle waits and the final one
SETUP_S = 180  # opening the PRs and starting two bots
TIMEOUT_S = WINDOWS_OPEN_S + MERGED_S + 3 * SETTLE_S + SETUP_S


@pytest.fixture
def small_world(postgres_url: str, tmp_path: Path) -> Iterator[RegistryWorld]:
    # A 2,000-row slice of the benchmark keeps the evaluations quick; the pin is real.
    bench = tmp_path / "bench.parquet"
    pd.read_parquet(FIXTURES / "benchmark/churn_benchmark.parquet").head(2000).to_parquet(bench)
    sha = hashlib.sha256(bench.read_bytes()).hexdigest()
    world = RegistryWorld(
        fixtures=FIXTURES,
        app_keypair=shared_app_keypair(),
        database_url=postgres_url,
        settings_overrides={"benchmark_roots": [str(tmp_path)]},  # where the slice lives
    )
    world.create_registry(
        production=None,  # new models: each is compared with the class prior
        policy_text=policy_text(
            benchmark={"uri": str(bench), "sha256": sha},
            latency={"enabled": False},
            calibration={"thresholds": []},
            segments={"min_size": 100, "min_positives": 5},
        ),
    )
    world.start_bot(cache_dir=tmp_path / "cache", evaluation_workers=2, worker_threads=4)
    try:
        yield world
        assert world.sandbox.violations == []
    finally:
        world.close()


def _model_files(world: RegistryWorld, name: str) -> dict[str, bytes | None]:
    files: dict[str, bytes | None] = {}
    for rel, data in world.candidate_files("candidate_better").items():
        assert data is not None
        if rel.endswith("config.yaml"):
            data = data.replace(b"name: churn", f"name: {name}".encode())
        files[rel.replace("models/churn/", f"models/{name}/")] = data
    return files


@pytest.mark.timeout(TIMEOUT_S)
def test_two_replicas_merge_fifty_due_prs_exactly_once(small_world: RegistryWorld) -> None:
    world = small_world
    numbers = [
        world.open_candidate_pr("candidate_better", files=_model_files(world, f"m{i:03d}"))
        for i in range(PRS)
    ]
    world.start_replica()

    def windows_open() -> bool:
        gates = [
            world.sandbox.check_run_named(REGISTRY, world.head_sha(n), "Shipyard / promotion-gate")
            for n in numbers
        ]
        return all(g is not None and g.conclusion == "action_required" for g in gates)

    started = time.monotonic()
    wait_until(
        windows_open, timeout_s=WINDOWS_OPEN_S, what=f"{PRS} review windows to open", every_s=0.5
    )
    print(f"windows open after {time.monotonic() - started:.1f} s")
    world.pass_time(timedelta(hours=25))
    wait_until(
        lambda: all(world.sandbox.pull(REGISTRY, n).merged for n in numbers),
        timeout_s=MERGED_S,
        what=f"{PRS} merges",
        every_s=0.5,
    )
    print(f"merged after {time.monotonic() - started:.1f} s")
    world.pass_time(timedelta(hours=1))  # more ticks on both replicas change nothing
    wait_until(world.idle, timeout_s=SETTLE_S, what="both replicas to settle")
    puts = Counter(
        r.path for r in world.sandbox.requests if r.method == "PUT" and r.path.endswith("/merge")
    )
    assert len(puts) == PRS
    assert set(puts.values()) == {1}
