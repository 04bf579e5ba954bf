"""`shipyard demo-shadow`: pipeline step 3 on replayed traffic, against a real staging gateway.

PR 1 proposes the clearly better churn model. After its evaluation the bot publishes it to the
staging gateway's artifact store and routes it as shadow; production traffic (benchmark rows
replayed through the gateway) is mirrored to it, and a day later (the clock is moved) its
shadow passes and the bot merges it. PR 2 proposes another model; by then production traffic
has drifted away from the training data (one feature moved by four standard deviations) —
something no frozen benchmark can show — and its shadow fails, so the gate fails.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

from bot.base.local_server import LocalServer
from bot.base.waiting import wait_until
from bot.cli.demo import demo_policy
from bot.cli.registry_world import REGISTRY, RegistryWorld
from evaluators.candidate import parse_model_config
from gateway import names
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.routing import load_routing

GATE = "Shipyard / promotion-gate"
SHADOW = "Shipyard / shadow (churn)"
REQUESTS = 400
# Minimums sized for a demo: a day of mirrored traffic and a few hundred paired requests.
SHADOW_POLICY = {
    "required": True,
    "min_duration_hours": 24,
    "min_samples": 300,
    "flip_rate_effect": 0.2,
    "segment_columns": [],  # the gateway logs model features; the fixture's segments are not
    "max_latency_ratio": 20,  # a busy laptop's timing noise must not change the story
}


def _policy(fixtures: Path) -> str:
    policy = yaml.safe_load(demo_policy(fixtures))
    policy["shadow"] = SHADOW_POLICY
    return yaml.safe_dump(policy, sort_keys=False)


def _traffic(fixtures: Path, *, drift_sd: float) -> np.ndarray:
    config = parse_model_config(
        (fixtures / "registry/production/models/churn/config.yaml").read_text()
    )
    frame = pd.read_parquet(fixtures / "benchmark/churn_benchmark.parquet", columns=config.features)
    x: np.ndarray = frame.head(REQUESTS).to_numpy(dtype=np.float32).copy()
    x[:, 0] += drift_sd * x[:, 0].std()
    return x


def _serving_shadow(client: httpx.Client, routing: Path) -> bool:
    """The gateway has loaded the shadow version the routing table names (it announces a
    loaded version's series on /metrics); mirrors sent before that would be dropped."""
    route = load_routing(routing).models.get("churn")
    if route is None or route.shadow is None:
        return False
    wanted = f'{names.MIRRORED}_total{{model="churn",version="{route.shadow.version}"}}'
    return wanted in client.get("/metrics").text


def _replay(gateway_url: str, routing: Path, x: np.ndarray, *, prefix: str) -> None:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        wait_until(
            lambda: _serving_shadow(client, routing),
            timeout_s=60,
            what="the gateway to load production and the shadow",
        )
        for i, row in enumerate(x):
            body = {
                "inputs": [
                    {
                        "name": "features",
                        "shape": [1, len(row)],
                        "datatype": "FP32",
                        "data": row.tolist(),
                    }
                ]
            }
            answer = client.post(
                "/v2/models/churn/infer", json=body, headers={"x-request-id": f"{prefix}-{i}"}
            )
            answer.raise_for_status()


def _logged(staging: Path, prefix: str) -> int:
    """Prediction-log rows (production and shadow) the gateway has written for this replay."""
    log_dir = staging / "artifacts" / "prediction-log"
    if not log_dir.exists():
        return 0
    ids = pd.read_parquet(log_dir, columns=["request_id"])["request_id"]
    return int(ids.astype(str).str.startswith(f"{prefix}-").sum())


def _replayed(gateway_url: str, staging: Path, x: np.ndarray, *, prefix: str) -> None:
    """Replay, then wait until every answer and its mirror are in the prediction log."""
    _replay(gateway_url, staging / "routing.json", x, prefix=prefix)
    wait_until(
        lambda: _logged(staging, prefix) >= 2 * len(x),
        timeout_s=60,
        what="the gateway to log every request and its mirror",
    )


def _check(world: RegistryWorld, number: int, name: str) -> Any:
    return world.check_run(number, name)


def _settled(world: RegistryWorld, number: int, name: str, *, done: bool = True) -> Any:
    def ready() -> Any:
        run = _check(world, number, name)
        if run is None:
            return None
        if done and run.status != "completed":
            return None
        if not done and "started" not in run.output.get("title", ""):
            return None
        return run

    return wait_until(ready, timeout_s=180, what=f"{name} on PR #{number}")


def _deployments(world: RegistryWorld) -> Table:
    table = Table(title="GitHub Deployments (environment shadow/churn)")
    for column in ("sha", "statuses, oldest first"):
        table.add_column(column)
    with world.sandbox.lock:
        for deployment in sorted(
            world.sandbox.repos[REGISTRY].deployments.values(), key=lambda d: d.id
        ):
            table.add_row(deployment.sha[:7], " → ".join(s.state for s in deployment.statuses))
    return table


def run_shadow_demo(*, fixtures: Path, out_dir: Path, console: Console | None = None) -> int:
    """Run the story; returns 0 when it ends as it should."""
    console = console or Console()
    staging = (out_dir / "staging").resolve()
    staging.mkdir(parents=True, exist_ok=True)
    for stale in ("routing.json", "shipyard-shadow-demo.db"):
        (staging / stale).unlink(missing_ok=True)
    shutil.rmtree(staging / "artifacts", ignore_errors=True)  # last run's bundles and log
    world = RegistryWorld(
        fixtures=fixtures.resolve(),
        database_url=f"sqlite:///{staging / 'shipyard-shadow-demo.db'}",
        settings_overrides={
            "shadow_artifact_store": str(staging / "artifacts"),
            "shadow_routing_table": staging / "routing.json",
            "shadow_check_interval_s": 3600,
        },
    )
    gateway = LocalServer(
        create_app(
            GatewayConfig(
                store_url=str(staging / "artifacts"),
                routing_path=staging / "routing.json",
                clock=world.clock,
                log_flush_s=0.2,  # the story judges the log right after the replay
            )
        )
    )
    try:
        with console.status("Starting the GitHub sandbox, the bot and a staging gateway…"):
            world.create_registry(policy_text=_policy(fixtures))
            world.start_bot(cache_dir=out_dir.resolve() / "prediction-cache")
            gateway.start()
        console.print(f"Staging gateway at {gateway.url} (Open Inference Protocol v2)")

        with console.status("PR #1: a clearly better model, evaluated, then shadowed…"):
            first = world.open_candidate_pr("candidate_better", author="data-scientist")
            shadow = _settled(world, first, SHADOW, done=False)
            gate = _settled(world, first, GATE)
        console.print(f"PR #{first} shadow: {shadow.output['title']}")
        console.print(f"PR #{first} gate: [bold]{gate.conclusion}[/] — {gate.output['title']}")
        with console.status(f"Replaying {REQUESTS} production requests through the gateway…"):
            _replayed(gateway.url, staging, _traffic(fixtures, drift_sd=0.0), prefix="day1")
        console.print("Moving the clock 25 hours forward (shadow minimum and review window)…")
        world.pass_time(timedelta(hours=25))
        merged = bool(
            wait_until(
                lambda: world.sandbox.pull(REGISTRY, first).merged,
                timeout_s=180,
                what="PR #1 to merge after its shadow passed",
            )
        )
        console.print(
            f"PR #{first} shadow: [bold]{_check(world, first, SHADOW).output['title']}[/]"
        )
        console.print(f"PR #{first} merged by the bot: {merged}")

        with console.status("PR #2: another model; production traffic has drifted meanwhile…"):
            second = world.open_candidate_pr("candidate_skops", author="analyst")
            _settled(world, second, SHADOW, done=False)
            _replayed(gateway.url, staging, _traffic(fixtures, drift_sd=4.0), prefix="day2")
        world.pass_time(timedelta(hours=25))
        caught = _settled(world, second, SHADOW)
        gate = wait_until(
            lambda: (
                (run := _check(world, second, GATE)) is not None
                and run.conclusion == "failure"
                and run
            ),
            timeout_s=180,
            what="PR #2's gate to fail",
        )
        console.print(
            f"PR #{second} shadow: [bold]{caught.conclusion}[/] — {caught.output['title']}"
        )
        for line in caught.output.get("summary", "").splitlines()[:8]:
            console.print(f"    {line}")
        console.print(f"PR #{second} gate: [bold]{gate.conclusion}[/] — {gate.output['title']}")
        console.print(_deployments(world))
        ok = merged and caught.conclusion == "failure"
        mark = "✅" if ok else "❌"
        console.print(
            f"[bold]{mark} PR #{first} passed shadow and merged: {merged}; "
            f"PR #{second}'s shadow caught the drift: {caught.conclusion == 'failure'}[/]"
        )
        return 0 if ok else 1
    except TimeoutError as exc:  # the story did not unfold: say where it stopped, no traceback
        console.print(f"[bold red]The demo stopped: {exc}.[/]")
        return 1
    finally:
        gateway.stop()
        world.close()
