"""Helpers for the gateway tests: publish the real fixture models, run a real gateway (uvicorn on
a free loopback port, in a thread so a test can inject the clock and the mirror hook)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import uvicorn

from bot.base.waiting import wait_until
from evaluators.artifacts.inference import open_runner
from evaluators.candidate import parse_model_config
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.routing import CanarySlot, Deployed, ModelRoute, Routing, ShadowSlot, save_routing
from gateway.store import ArtifactStore

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "fixtures" / "registry"
BENCHMARK = ROOT / "fixtures" / "benchmark" / "churn_benchmark.parquet"
# version -> fixture variant
VERSIONS = {"1.0.0": "production", "1.1.0": "candidate_better", "1.2.0": "candidate_skops"}


def fixture_dir(variant: str) -> Path:
    return REGISTRY / variant / "models" / "churn"


def evaluator_scores(variant: str, x: np.ndarray) -> np.ndarray:
    """What the evaluators' own runner predicts for these rows."""
    model_dir = fixture_dir(variant)
    config = parse_model_config((model_dir / "config.yaml").read_text())
    return open_runner(model_dir=model_dir, config=config).predict(x)


def benchmark_rows(n: int, *, start: int = 0) -> tuple[list[str], np.ndarray]:
    config = parse_model_config((fixture_dir("production") / "config.yaml").read_text())
    frame = pd.read_parquet(BENCHMARK, columns=config.features).iloc[start : start + n]
    return config.features, frame.to_numpy(dtype=np.float32)


def publish_fixtures(store: Path) -> dict[str, str]:
    """Every fixture version published; version -> bundle sha256."""
    artifacts = ArtifactStore(str(store))
    return {
        version: artifacts.publish(fixture_dir(variant), model="churn", version=version)
        for version, variant in VERSIONS.items()
    }


def write_route(
    path: Path,
    shas: dict[str, str],
    *,
    production: str,
    shadow: str | None = None,
    mirror_share: float = 1.0,
    canary: str | None = None,
    weight: float = 0.0,
    revision: int = 1,
    model: str = "churn",
) -> None:
    route = ModelRoute(
        production=Deployed(version=production, sha256=shas[production]),
        shadow=None
        if shadow is None
        else ShadowSlot(version=shadow, sha256=shas[shadow], mirror_share=mirror_share),
        canary=None
        if canary is None
        else CanarySlot(version=canary, sha256=shas[canary], weight=weight),
    )
    save_routing(path, Routing(revision=revision, models={model: route}))


@dataclass
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class RunningGateway:
    url: str
    client: httpx.Client

    def infer(
        self,
        x: np.ndarray,
        *,
        request_id: str | None = None,
        model: str = "churn",
        name: str = "features",
    ) -> httpx.Response:
        body = {
            "inputs": [
                {
                    "name": name,
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "data": x.reshape(-1).tolist(),
                }
            ]
        }
        headers = {"x-request-id": request_id} if request_id else {}
        return self.client.post(f"/v2/models/{model}/infer", json=body, headers=headers)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include `labels` (0 when absent)."""
        text = self.client.get("/metrics").text
        total = 0.0
        for line in text.splitlines():
            match = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$", line)
            if not match or match.group(1) != name:
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(3))
        return total


@contextmanager
def running_gateway(config: GatewayConfig, *, port: int = 0) -> Iterator[RunningGateway]:
    """A real gateway on a loopback port (free unless given); stopped (mirror drained, log
    flushed) on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: server.started, timeout_s=30, what="the gateway to start")
        with httpx.Client(base_url=url, timeout=30) as client:
            yield RunningGateway(url, client)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
