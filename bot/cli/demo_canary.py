"""`shipyard demo`'s last act: pipeline step 5 on a real production gateway.

The merged model rolls out in steps on the production gateway (uvicorn in this process, the
fixtures' models, the demo's clock) while replayed benchmark rows play production traffic, and
the bot judges each step on the gateway's prediction log (no Prometheus is needed to run the
demo). PR #1's clearly better model goes to 100% and is promoted. Then a HistGradientBoosting
model saved with skops — accepted by the benchmark evaluation, whose latency floor is generous —
is merged by a maintainer, and in production answers a hundred times slower than the model it
replaces: rolled back at its first analysis, a revert PR opened, on-call paged. The act ends by
printing what the on-call engineer receives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.panel import Panel

from bot.base.local_server import LocalServer
from bot.base.waiting import wait_until
from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.sandbox.pagerduty import PagerDutySandboxServer, PagerDutyState
from evaluators.candidate import parse_model_config
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.routing import Deployed, ModelRoute, Routing, load_routing, save_routing
from gateway.store import ArtifactStore

CANARY = "Shipyard / canary (churn)"
PRODUCTION_VERSION = "prod-2026-10"
ROUTING_KEY = "DEM0R0UT1NGKEY000000000000000000"  # 32 characters, as PagerDuty's are
REQUESTS_PER_LOOK = 240
INTERVAL_MINUTES = 10
# Minutes on the demo's clock: each step holds 10, each analysis looks at the last 10.
DEMO_CANARY = {
    "steps": [25, 50, 100],
    "hold_minutes": 10,
    "analysis_interval_minutes": INTERVAL_MINUTES,
    "min_requests": 20,
    "min_events": 0,
    "bake_minutes": 10,
    "max_hold_minutes": 120,
    # Everything runs in one process here, the bot included: the gateway's tail latency is
    # the bot's work, not the model's. Medians are still the model's. The floor sits well
    # below the skops model's median (0.7-1.2 ms; ONNX's is 0.03-0.06 ms): at 1 ms, a quiet
    # machine's 0.98 ms let PR #3's first analysis pass.
    "latency": {
        "max_p50_ratio": 1.25,
        "max_p95_ratio": 10,
        "max_p99_ratio": 50,
        "floor_ms": 0.3,
    },
}


@dataclass
class ProductionGateway:
    store: Path
    table: Path
    url: str
    features: int
    x: np.ndarray

    def replay(self, n: int, *, prefix: str) -> None:
        """`n` live requests; returns once the gateway has logged them all."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for i in range(n):
                row = self.x[i % len(self.x)]
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
                client.post(
                    "/v2/models/churn/infer", json=body, headers={"x-request-id": f"{prefix}-{i}"}
                ).raise_for_status()
        wait_until(
            lambda: self._logged(prefix) >= n,
            timeout_s=60,
            what="the gateway to log every request",
        )

    def _logged(self, prefix: str) -> int:
        log_dir = self.store / "prediction-log"
        if not log_dir.exists():
            return 0
        ids = pd.read_parquet(log_dir, columns=["request_id"])["request_id"]
        return int(ids.astype(str).str.startswith(f"{prefix}-").sum())

    def wait_ready(self, version: str) -> None:
        path = f"/v2/models/churn/versions/{version}/ready"
        with httpx.Client(base_url=self.url, timeout=10) as client:
            wait_until(
                lambda: client.get(path).status_code == 200,
                timeout_s=60,
                what=f"the production gateway to load {version}",
            )

    def route(self) -> ModelRoute:
        return load_routing(self.table).models["churn"]


def settings_for(root: Path, pagerduty_url: str) -> dict[str, Any]:
    """The bot's settings for the production gateway and PagerDuty."""
    return {
        "canary_artifact_store": str(root / "store"),
        "canary_routing_table": root / "routing.json",
        "canary_gateway_url": "http://gateway.production.example",
        "canary_check_interval_s": 60,
        # Replays return once the gateway has logged every request: a window is complete
        # when it ends (production gateways get SHIPYARD_MONITOR_GRACE_S to flush).
        "monitor_grace_s": 0,
        "pagerduty_events_url": pagerduty_url,
        "pagerduty_routing_key": ROUTING_KEY,
    }


@contextmanager
def pagerduty() -> Iterator[PagerDutySandboxServer]:
    with PagerDutySandboxServer(PagerDutyState(routing_key=ROUTING_KEY)) as server:
        yield server


@contextmanager
def production_gateway(
    world: RegistryWorld, fixtures: Path, root: Path
) -> Iterator[ProductionGateway]:
    """The production gateway serving the registry's production model."""
    production = fixtures / "registry/production/models/churn"
    store, table = root / "store", root / "routing.json"
    sha = ArtifactStore(str(store)).publish(production, model="churn", version=PRODUCTION_VERSION)
    save_routing(
        table,
        Routing(
            revision=1,
            models={
                "churn": ModelRoute(production=Deployed(version=PRODUCTION_VERSION, sha256=sha))
            },
        ),
    )
    config = parse_model_config((production / "config.yaml").read_text())
    frame = pd.read_parquet(fixtures / "benchmark/churn_benchmark.parquet", columns=config.features)
    x = frame.tail(2000).to_numpy(dtype=np.float32)
    gateway = GatewayConfig(
        store_url=str(store),
        routing_path=table,
        reload_every_s=0.05,
        log_flush_s=0.1,
        mirror_mode="thread",
        clock=world.clock,
    )
    with LocalServer(create_app(gateway)) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            wait_until(
                lambda: client.get("/v2/models/churn/ready").status_code == 200,
                timeout_s=60,
                what="the production gateway to load the production model",
            )
        yield ProductionGateway(store, table, server.url, len(config.features), x)


def _canary(world: RegistryWorld, number: int) -> Any:
    return world.check_run(number, CANARY)


def _next_title(world: RegistryWorld, number: int, shown: str) -> Any:
    run = _canary(world, number)
    return run if run is not None and (run.output["title"] != shown or run.conclusion) else None


def roll_out(
    console: Console, world: RegistryWorld, gateway: ProductionGateway, number: int
) -> Any:
    """Live traffic and the clock, one analysis at a time, until the rollout ends."""
    wait_until(
        lambda: (run := _canary(world, number)) is not None and "started" in run.output["title"],
        timeout_s=120,
        what=f"PR #{number}'s canary to start",
    )
    canary = gateway.route().canary
    if canary is not None:  # live traffic once the gateway answers with the canary too
        gateway.wait_ready(canary.version)
    shown = ""
    for look in range(12):
        gateway.replay(REQUESTS_PER_LOOK, prefix=f"pr{number}-look{look}")
        world.pass_time(timedelta(minutes=INTERVAL_MINUTES))
        run = wait_until(
            partial(_next_title, world, number, shown),
            timeout_s=120,
            what=f"PR #{number}'s next analysis",
        )
        shown = run.output["title"]
        console.print(f"  [dim]{world.clock.now():%H:%M}[/] {shown}")
        if run.conclusion:
            return run
    raise TimeoutError(f"PR #{number}'s canary did not finish in 12 analyses")


def on_call_view(console: Console, world: RegistryWorld, incidents: list[dict[str, Any]]) -> None:
    """The page as the on-call engineer receives it, and where to look next."""
    for incident in incidents:
        details = incident.get("custom_details") or {}
        body = [
            f"[bold]{incident['summary']}[/]",
            f"severity {incident['severity']} · source {incident['source']} · "
            f"status {incident['status']}",
            "",
            *[str(line) for line in details.get("metrics", [])],
            "",
            *[f"{link['text']}: {link['href']}" for link in incident.get("links", [])],
        ]
        console.print(Panel("\n".join(body), title="PagerDuty incident", expand=False))
    with world.sandbox.lock:
        reverts = [
            p
            for p in world.sandbox.repos[REGISTRY].pulls.values()
            if p.head_ref.startswith("shipyard/revert-")
        ]
    for pull in reverts:
        console.print(f"Revert PR #{pull.number}: {pull.title}")


def as_json(incidents: list[dict[str, Any]]) -> str:
    return json.dumps(incidents, indent=2, default=str)
