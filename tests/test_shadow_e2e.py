"""Pipeline step 3 end to end: a clearly better candidate receives mirrored production traffic
on a real staging gateway before the bot merges it, and is torn down after.

The bot runs against the GitHub sandbox with the manual clock; a real gateway (uvicorn on
loopback, the fixtures' ONNX models, the same clock for its prediction log) answers replayed
benchmark rows from production and mirrors them to the candidate. What is asserted is what a
reviewer and an operator see: the gate's text, the shadow check run, the deployment in
`shadow/churn`, the routing table, and the merge.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from bot.base.local_server import free_port
from bot.base.waiting import wait_until
from bot.cli.registry_world import REGISTRY, RegistryWorld
from evaluators.statistics.drift import build_profile
from gateway import names
from gateway.config import GatewayConfig
from gateway.routing import load_routing
from tests.gateway_harness import benchmark_rows, running_gateway
from tests.policies import policy_text
from tests.prometheus_server import running_prometheus
from tests.traffic_world import nginx_router_file, nginx_started, require
from tests.world_fixtures import FIXTURES, shared_app_keypair

GATE = "Shipyard / promotion-gate"
ROUTER_TOKEN = "staging-router-token-0123456789"
SHADOW = "Shipyard / shadow (churn)"
SHADOW_POLICY = {
    "required": True,
    "min_duration_hours": 24,
    "min_samples": 300,
    "flip_rate_effect": 0.2,  # a large effect: a few hundred pairs size the test
    "segment_columns": [],  # the gateway logs model features; the fixture's segments are not
    "max_latency_ratio": 20,  # a loaded CI machine's timing is noise (latency has its own tests)
}


@dataclass
class Staging:
    world: RegistryWorld
    store: Path
    table: Path
    # With nginx in front (SHIPYARD_SHADOW_NGINX): its URL, and the port of the gateway pool
    # behind it that every version's upstream names.
    nginx_url: str | None = None
    gateway_port: int = 0

    def gate(self, number: int) -> Any:
        return self.world.check_run(number, GATE)

    def shadow(self, number: int) -> Any:
        return self.world.check_run(number, SHADOW)

    def deployment_states(self) -> list[str]:
        """The states of the newest deployment Shipyard made, oldest first ([] before one)."""
        with self.world.sandbox.lock:
            made = sorted(
                self.world.sandbox.repos[REGISTRY].deployments.values(), key=lambda d: d.id
            )
            assert all(d.environment == "shadow/churn" for d in made)
            return [s.state for s in made[-1].statuses] if made else []

    def verdict_after_a_day(self, number: int, *, shift_first_feature_by_sd: float = 0.0) -> Any:
        """Once the PR's shadow started: 400 requests replayed, 25 hours passed, the verdict."""
        wait_until(
            lambda: self.deployment_states() == ["in_progress"],
            timeout_s=120,
            what="the shadow stage to start",
        )
        self.replay(400, shift_first_feature_by_sd=shift_first_feature_by_sd)
        self.world.pass_time(timedelta(hours=25))
        return wait_until(
            lambda: (run := self.shadow(number)) is not None and run.conclusion and run,
            timeout_s=120,
            what="the shadow verdict",
        )

    def replay(self, rows: int, *, shift_first_feature_by_sd: float = 0.0) -> None:
        """Production traffic through the staging gateway; every request mirrored and logged."""
        config = GatewayConfig(
            store_url=str(self.store),
            routing_path=self.table,
            clock=self.world.clock,
            behind_router=self.nginx_url is not None,
            router_token=ROUTER_TOKEN if self.nginx_url is not None else None,
        )
        _, x = benchmark_rows(rows)
        x = x.copy()  # the benchmark's array is read-only
        x[:, 0] += shift_first_feature_by_sd * x[:, 0].std()
        with running_gateway(config, port=self.gateway_port) as gateway:
            wait_until(
                lambda: 'variant="shadow"' in gateway.client.get("/metrics").text,
                timeout_s=60,
                what="the gateway to load production and the shadow",
            )
            front = gateway if self.nginx_url is None else _Through(self.nginx_url)
            for i in range(rows):
                answer = front.infer(x[i : i + 1], request_id=f"req-{i}")
                assert answer.status_code == 200
                assert answer.headers["x-shipyard-variant"] == "production"
            if self.nginx_url is not None:  # nginx mirrors beside the answer: let it finish
                wait_until(
                    lambda: gateway.metric("shipyard_gateway_mirrored_total") >= rows,
                    timeout_s=60,
                    what="nginx to deliver every mirror",
                )
            # A loaded machine starves the shadow: let it answer every mirrored request, or
            # the gateway's bounded drain at shutdown drops (and counts) the rest.
            wait_until(
                lambda: gateway.metric("shipyard_gateway_requests_total", variant="shadow") >= rows,
                timeout_s=120,
                what="the shadow to answer every mirrored request",
            )
        # Leaving the context flushed the prediction log.


class _Through:
    """Requests sent to nginx instead of the gateway (nginx gives each its own id)."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)

    def infer(self, x: Any, *, request_id: str) -> httpx.Response:
        tensor = {"name": "features", "shape": list(x.shape), "datatype": "FP32"}
        body = {"inputs": [{**tensor, "data": x.reshape(-1).tolist()}]}
        return self.client.post("/v2/models/churn/infer", json=body)


@contextmanager
def _staging(database_url: str, tmp_path: Path, **settings: Any) -> Iterator[Staging]:
    store, table = tmp_path / "artifacts", tmp_path / "routing.json"
    world = RegistryWorld(
        fixtures=FIXTURES,
        app_keypair=shared_app_keypair(),
        database_url=database_url,
        settings_overrides={
            "shadow_artifact_store": str(store),
            "shadow_routing_table": table,
            "shadow_gateway_url": "http://gateway.staging.test",
            "shadow_check_interval_s": 3600,
            **settings,
        },
    )
    try:
        world.create_registry(policy_text=policy_text(shadow=SHADOW_POLICY))
        world.start_bot()
        yield Staging(world, store, table)
        assert world.sandbox.violations == []
    finally:
        world.close()


@pytest.fixture
def staging(database_url: str, tmp_path: Path) -> Iterator[Staging]:
    with _staging(database_url, tmp_path) as staging:
        yield staging


@pytest.fixture
def staging_behind_nginx(database_url: str, tmp_path: Path) -> Iterator[Staging]:
    """The staging gateways behind a real nginx that the bot drives from its nginx file."""
    gateway_port = free_port()
    pool = f"{{'*': {{'*': '127.0.0.1:{gateway_port}'}}}}"
    router_file = nginx_router_file(tmp_path, upstreams=pool, token=ROUTER_TOKEN)
    with (
        nginx_started(tmp_path / "routing.json", router_file) as router,
        _staging(database_url, tmp_path, shadow_nginx=router_file) as staging,
    ):
        staging.nginx_url = f"http://127.0.0.1:{router.port}"
        staging.gateway_port = gateway_port
        yield staging


def test_behind_nginx_the_candidate_gets_its_mirrored_traffic_and_passes(
    staging_behind_nginx: Staging,
) -> None:
    staging = staging_behind_nginx
    world = staging.world
    number = world.open_candidate_pr("candidate_better")
    wait_until(
        lambda: staging.deployment_states() == ["in_progress"],
        timeout_s=120,
        what="the shadow stage to start",
    )
    assert staging.nginx_url is not None
    config = (Path(staging.table).parent / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    assert f"shadow pr{number}-" in config and "mirror /_shipyard/mirror/0;" in config
    assert load_routing(staging.table).models["churn"].shadow is not None

    staging.replay(400)
    world.pass_time(timedelta(hours=25))
    assert wait_until(
        lambda: world.sandbox.pull(REGISTRY, number).merged,
        timeout_s=120,
        what="the bot to merge after shadow passed",
    )
    shadow = staging.shadow(number)
    assert shadow.conclusion == "success", shadow.output
    assert "400 of" in shadow.output["title"]
    # The merge ends the stage in nginx and in the gateways' table alike.
    wait_until(
        lambda: load_routing(staging.table).models["churn"].shadow is None,
        timeout_s=60,
        what="the shadow slot to be removed",
    )
    config = (Path(staging.table).parent / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    assert "mirror /_shipyard/mirror/0;" not in config


def test_a_better_candidate_is_merged_only_after_its_shadow_passed(staging: Staging) -> None:
    world = staging.world
    number = world.open_candidate_pr("candidate_better")

    # Evaluated clearly better, then deployed as shadow: the gate waits for it.
    shadow = wait_until(
        lambda: (
            (run := staging.shadow(number)) is not None and "started" in run.output["title"] and run
        ),
        timeout_s=120,
        what="the shadow stage to start",
    )
    assert shadow.status == "in_progress"
    gate = wait_until(
        lambda: (
            (run := staging.gate(number)) is not None and "shadow" in run.output["title"] and run
        ),
        timeout_s=60,
        what="the gate to wait for shadow",
    )
    assert gate.conclusion == "action_required"
    assert gate.output["title"].startswith("Clear improvement: waiting for shadow traffic")
    route = load_routing(staging.table).models["churn"]
    assert route.shadow is not None and route.shadow.version.startswith(f"pr{number}-")
    assert route.production.version.startswith("base-")  # the gateway served nothing before
    wait_until(
        lambda: staging.deployment_states() == ["in_progress"],
        timeout_s=60,
        what="the shadow deployment",
    )

    # Reviewers see it where they are: the report comment and /status.
    report = wait_until(
        lambda: next(
            (
                c.body
                for c in world.sandbox.comments_on(REGISTRY, number)
                if "#### Shadow traffic" in c.body
                and "started" in c.body.split("#### Shadow traffic")[1]
            ),
            None,
        ),
        timeout_s=60,
        what="the report comment's shadow section",
    )
    assert "`churn` (running): started: receiving mirrored production traffic" in report
    before = len(world.sandbox.comments_on(REGISTRY, number))
    world.sandbox.add_comment(REGISTRY, number, "/status", "data-scientist")
    status = wait_until(
        lambda: next(
            (
                c.body
                for c in world.sandbox.comments_on(REGISTRY, number)[before:]
                if c.body.startswith("@data-scientist")
            ),
            None,
        ),
        timeout_s=60,
        what="the answer to /status",
    )
    assert "Shadow `churn`: started: receiving mirrored production traffic" in status

    staging.replay(400)
    # A day passes: the review window ends while shadow has its evidence but is not judged
    # yet; the next check judges it, and the window's merge follows.
    world.pass_time(timedelta(hours=25))
    merged = wait_until(
        lambda: world.sandbox.pull(REGISTRY, number).merged,
        timeout_s=120,
        what="the bot to merge after shadow passed",
    )
    assert merged
    shadow = staging.shadow(number)
    assert shadow.conclusion == "success", shadow.output
    assert "400 of" in shadow.output["title"]

    # The merge ends the stage: the shadow slot leaves the table, the deployment is inactive.
    wait_until(
        lambda: load_routing(staging.table).models["churn"].shadow is None,
        timeout_s=60,
        what="the shadow slot to be removed",
    )
    wait_until(
        lambda: staging.deployment_states()[-1] == "inactive",
        timeout_s=60,
        what="the deployment to become inactive",
    )
    assert staging.deployment_states() == ["in_progress", "success", "inactive"]


def test_shadow_catches_drifted_traffic_that_the_benchmark_missed(staging: Staging) -> None:
    world = staging.world
    number = world.open_candidate_pr("candidate_better")
    # Production traffic no longer looks like the training data: one feature moved by far
    # more than its spread (what the benchmark, frozen in time, cannot show).
    shadow = staging.verdict_after_a_day(number, shift_first_feature_by_sd=4.0)
    assert shadow.conclusion == "failure"
    assert "PSI" in shadow.output["summary"]
    gate = wait_until(
        lambda: (run := staging.gate(number)) is not None and run.conclusion == "failure" and run,
        timeout_s=60,
        what="the gate to fail",
    )
    assert gate.output["title"] == "Shadow traffic found a problem the benchmark missed"
    assert not world.sandbox.pull(REGISTRY, number).merged
    assert staging.deployment_states() == ["in_progress", "failure"]


def test_a_new_push_stops_the_old_heads_shadow_and_starts_one_for_the_new_head(
    staging: Staging,
) -> None:
    world = staging.world
    number = world.open_candidate_pr("candidate_better", branch="candidate/again")
    first = world.head_sha(number)
    wait_until(
        lambda: staging.deployment_states() == ["in_progress"],
        timeout_s=120,
        what="the first head's shadow",
    )
    world.sandbox.push(
        REGISTRY,
        "candidate/again",
        {"models/churn/CHANGELOG.md": b"# 1.1.1\nSame model, new notes.\n"},
        message="Notes",
        author="data-scientist",
    )
    second = wait_until(
        lambda: (sha := world.head_sha(number)) != first and sha, what="the new head"
    )
    route = wait_until(
        lambda: (
            (r := load_routing(staging.table).models["churn"]).shadow is not None
            and r.shadow.version == f"pr{number}-{second[:12]}"
            and r
        ),
        timeout_s=120,
        what="the new head's shadow to replace the old one",
    )
    assert route.shadow is not None
    with world.sandbox.lock:
        made = {d.sha: d for d in world.sandbox.repos[REGISTRY].deployments.values()}
    assert made[first].statuses[-1].state == "inactive"


def test_one_candidate_at_a_time_holds_a_models_shadow_slot(staging: Staging) -> None:
    world = staging.world
    first = world.open_candidate_pr("candidate_better")
    wait_until(
        lambda: (run := staging.shadow(first)) is not None and "started" in run.output["title"],
        timeout_s=120,
        what="the first candidate's shadow",
    )
    second = world.open_candidate_pr("candidate_skops")
    waiting = wait_until(
        lambda: (
            (run := staging.shadow(second)) is not None and "waiting" in run.output["title"] and run
        ),
        timeout_s=120,
        what="the second candidate to wait for the slot",
    )
    assert f"PR #{first}'s candidate holds the shadow slot" in waiting.output["title"]
    assert load_routing(staging.table).models["churn"].shadow.version.startswith(f"pr{first}-")

    staging.replay(400)
    world.pass_time(timedelta(hours=25))  # the first is judged and leaves the slot
    wait_until(
        lambda: staging.shadow(first).conclusion == "success",
        timeout_s=120,
        what="the first shadow to pass",
    )
    world.pass_time(timedelta(hours=1))  # the second's next look finds the slot free
    route = wait_until(
        lambda: (
            (r := load_routing(staging.table).models["churn"]).shadow is not None
            and r.shadow.version.startswith(f"pr{second}-")
            and r
        ),
        timeout_s=120,
        what="the second candidate to take the slot",
    )
    assert route.shadow is not None


def _latency_history(start: datetime, hours: int, series: dict[tuple[str, str], float]) -> str:
    """OpenMetrics text: one sample a minute of the gateway's latency histogram for each
    (variant, version), 60 requests a minute all in the bucket whose upper bound is given."""
    lines = [f"# TYPE {names.LATENCY_SECONDS} histogram"]
    bounds = (0.005, 0.01, 0.025, 0.05, 0.1)
    for minute in range(hours * 60 + 1):
        stamp = (start + timedelta(minutes=minute)).timestamp()
        count = 60.0 * (minute + 1)
        for (variant, version), bucket in series.items():
            labels = f'model="churn",variant="{variant}",version="{version}"'
            for le in (*bounds, "+Inf"):
                filled = count if le == "+Inf" or float(le) >= bucket else 0.0
                lines.append(
                    f'{names.LATENCY_SECONDS}_bucket{{{labels},le="{le}"}} {filled} {stamp}'
                )
            lines.append(f"{names.LATENCY_SECONDS}_count{{{labels}}} {count} {stamp}")
            lines.append(f"{names.LATENCY_SECONDS}_sum{{{labels}}} {count * bucket} {stamp}")
    return "\n".join([*lines, "# EOF", ""])


@pytest.mark.parametrize("shadow_scraped", [True, False])
def test_shadow_latency_is_read_from_prometheus_when_one_is_configured(
    database_url: str, tmp_path: Path, shadow_scraped: bool
) -> None:
    port = free_port()
    world = RegistryWorld(
        fixtures=FIXTURES,
        app_keypair=shared_app_keypair(),
        database_url=database_url,
        settings_overrides={
            "shadow_artifact_store": str(tmp_path / "artifacts"),
            "shadow_routing_table": tmp_path / "routing.json",
            "shadow_prometheus_url": f"http://127.0.0.1:{port}",
            "shadow_check_interval_s": 3600,
        },
    )
    try:
        world.create_registry(policy_text=policy_text(shadow=SHADOW_POLICY))
        world.start_bot()
        staging = Staging(world, tmp_path / "artifacts", tmp_path / "routing.json")
        number = world.open_candidate_pr("candidate_better")
        wait_until(
            lambda: staging.deployment_states() == ["in_progress"],
            timeout_s=120,
            what="the shadow stage to start",
        )
        route = load_routing(staging.table).models["churn"]
        assert route.shadow is not None
        # A day of the staging gateways' latency as Prometheus scraped it: production answers
        # within 5 ms, the shadow within 10-25 ms.
        start = world.clock.now() - timedelta(minutes=5)
        scraped = {("production", route.production.version): 0.005}
        if shadow_scraped:
            scraped[("shadow", route.shadow.version)] = 0.025
        history = _latency_history(start, 26, scraped)
        (tmp_path / "history.txt").write_text(history)
        subprocess.run(
            [
                require("promtool"),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "history.txt",
                "data",
            ],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
        staging.replay(400)
        with running_prometheus(tmp_path, "global: {}\n", port=port):
            world.pass_time(timedelta(hours=25))
            if not shadow_scraped:
                # No latency series for the shadow is no data, never zero: never a pass. At
                # the maximum duration a person decides.
                wait_until(
                    lambda: "collecting: 25.0 h" in staging.shadow(number).output["title"],
                    timeout_s=120,
                    what="the shadow to keep collecting",
                )
                assert staging.shadow(number).conclusion is None
                world.pass_time(timedelta(hours=48))
            shadow = wait_until(
                lambda: (run := staging.shadow(number)) is not None and run.conclusion and run,
                timeout_s=120,
                what="the shadow verdict",
            )
        summary = shadow.output["summary"]
        if not shadow_scraped:
            assert shadow.conclusion == "action_required", summary
            assert "Latency: no data from the metrics source" in summary, summary
            wait_until(
                lambda: (
                    staging.gate(number).output["title"]
                    == "Shadow inconclusive: an authorised /approve is required"
                ),
                timeout_s=60,
                what="the gate to ask for a person",
            )
            assert not world.sandbox.pull(REGISTRY, number).merged
            return
        # histogram_quantile interpolates inside the bucket: production 2.5/4.75/4.95 ms.
        assert "production 2.50/4.75/4.95 ms" in summary, summary
        assert "shadow 17.5/" in summary, summary
        assert shadow.conclusion == "success"
    finally:
        world.close()


def test_an_unreadable_reference_profile_makes_shadow_ask_for_a_person(staging: Staging) -> None:
    world = staging.world
    files = world.candidate_files("candidate_better")
    files["models/churn/reference_profile.json"] = b'{"features": {"tenure_months": 7}}'
    number = world.open_candidate_pr("candidate_better", files=files)
    shadow = staging.verdict_after_a_day(number)
    assert shadow.conclusion == "action_required"
    assert "reference_profile.json could not be read" in shadow.output["title"]
    wait_until(
        lambda: (
            staging.gate(number).output["title"]
            == "Shadow inconclusive: an authorised /approve is required"
        ),
        timeout_s=60,
        what="the gate to ask for a person",
    )
    assert not world.sandbox.pull(REGISTRY, number).merged


def test_drift_is_judged_against_the_profile_the_candidate_ships(staging: Staging) -> None:
    # The author says the model was trained on customers with far longer tenures than
    # production's: unchanged production traffic is then drift for this model.
    trained_on = pd.read_parquet(FIXTURES / "benchmark/churn_benchmark.parquet")
    trained_on["tenure_months"] = (
        trained_on["tenure_months"] + 4 * trained_on["tenure_months"].std()
    )
    profile = build_profile(trained_on, columns=["tenure_months"]).model_dump_json()
    world = staging.world
    files = world.candidate_files("candidate_better")
    files["models/churn/reference_profile.json"] = profile.encode()
    number = world.open_candidate_pr("candidate_better", files=files)
    shadow = staging.verdict_after_a_day(number)
    assert shadow.conclusion == "failure"
    assert "Input drift in tenure_months" in shadow.output["summary"]
