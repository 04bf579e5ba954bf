"""Pipeline step 5 end to end: after merge, the model rolls out on a real production gateway
scraped by a real Prometheus, with the bot on PostgreSQL, GitHub, Slack and PagerDuty doubles.

The bot's clock follows the wall clock here (Prometheus stamps its samples with real time, and
every analysis window ends at the bot's clock); the policy's holds and intervals are seconds, so
each rollout takes a few of them. Traffic is sent the whole time by a background thread, and
the waits poll what a person would look at: the check run, the deployment's statuses, the
routing table, the revert PR, the Slack message and the PagerDuty incidents.

- a healthy canary (candidate_better, ONNX like production) steps 25% → 50% → 100% and is
  promoted;
- a slow canary (candidate_skops: scikit-learn inside the gateway, milliseconds per row against
  production's microseconds) is rolled back at its first analysis: traffic back at once, the
  deployment `failure`, a revert PR, the Slack message, exactly one incident;
- a canary with no traffic holds, then pauses and pages instead of passing;
- the bot killed mid-rollout resumes it without doubling a step, a rollback or a page;
- `/rollback` from Slack rolls back.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.base.clock import ManualClock
from bot.base.waiting import wait_until
from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.sandbox.pagerduty import PagerDutySandboxServer, PagerDutyState
from gateway.config import GatewayConfig
from gateway.routing import Deployed, ModelRoute, Routing, load_routing, save_routing
from gateway.store import ArtifactStore
from tests.gateway_harness import RunningGateway, benchmark_rows, fixture_dir, running_gateway
from tests.prometheus_server import running_prometheus
from tests.slack_world import ALICE, SlackRig, start_slack_world
from tests.traffic_world import nginx_router_file, nginx_started, require
from tests.world_fixtures import FIXTURES, shared_app_keypair

CANARY = "Shipyard / canary (churn)"
ROUTER_TOKEN_FOR_NGINX = "production-router-token-0123456789"
PRODUCTION_VERSION = "v41"
ROUTING_KEY = "R0UT1NGKEY0123456789ABCDEFGHIJKL"  # 32 characters, like PagerDuty's
# Seconds, not hours: each step holds 3 s, each analysis looks at the last 9 s. The first step
# is a quarter of the traffic so that even on a loaded machine (fewer requests sent) a window
# holds enough canary requests for its median latency.
QUICK_CANARY = {
    "steps": [25, 50, 100],
    "hold_minutes": 0.05,
    "analysis_interval_minutes": 0.15,
    "min_requests": 20,
    "min_events": 0,
    "bake_minutes": 0.05,
    "max_hold_minutes": 3,
    "failure_limit": 2,
}
# A loaded two-core CI machine's scheduling noise is milliseconds: a healthy canary's latency
# is judged with room for it. Where a slow canary must be caught, the median is strict (noise
# moves tails, not medians: the slow model's median is milliseconds against microseconds) and
# the tails keep room for a healthy canary's noise.
LENIENT_LATENCY = {"max_p50_ratio": 20, "max_p95_ratio": 20, "max_p99_ratio": 20, "floor_ms": 25}
STRICT_LATENCY = {"max_p50_ratio": 1.5, "max_p95_ratio": 20, "max_p99_ratio": 20, "floor_ms": 0.5}


@dataclass
class Traffic:
    """Live requests to the production gateway from a background thread, until stopped."""

    gateway: RunningGateway
    sent: int = 0
    by_variant: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        _, x = benchmark_rows(500)

        def run() -> None:
            i = 0
            while not self._stop.is_set():
                try:
                    answer = self.gateway.infer(
                        x[i % 500 : i % 500 + 1], request_id=uuid.uuid4().hex
                    )
                    variant = answer.headers.get("x-shipyard-variant", str(answer.status_code))
                except httpx.TransportError:
                    # nginx closes idle keep-alive connections when it reloads: a request sent
                    # on one at that moment is never answered (a client retries it).
                    variant = "disconnected"
                self.by_variant[variant] = self.by_variant.get(variant, 0) + 1
                self.sent += 1
                i += 1
                self._stop.wait(0.004)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


class WallClock(ManualClock):
    """The bot's clock, kept at wall time by a thread (Prometheus' samples carry wall time)."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(0.02):
            behind = datetime.now(UTC) - self.now()
            if behind > timedelta(0):
                self.advance(behind)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Production:
    rig: SlackRig
    world: RegistryWorld
    table: Path
    gateway: RunningGateway
    pagerduty: PagerDutySandboxServer
    traffic: Traffic

    def merge(self, variant: str) -> int:
        """A candidate PR, evaluated, then merged by a maintainer."""
        world = self.world
        number = world.open_candidate_pr(variant)
        wait_until(
            lambda: (
                (run := world.check_run(number, "Shipyard / promotion-gate")) is not None
                and run.conclusion
            ),
            timeout_s=180,
            what="the evaluation",
        )
        with world.sandbox.events():  # the merge's webhook is sent at once, as GitHub does
            world.sandbox.merge_pull(REGISTRY, number, merge_method="squash", merged_by="lead-ml")
        return number

    def canary(self, number: int) -> Any:
        return self.world.check_run(number, CANARY)

    def finished(self, number: int, *, timeout_s: float = 120) -> Any:
        return wait_until(
            lambda: (run := self.canary(number)) is not None and run.conclusion and run,
            timeout_s=timeout_s,
            what="the canary to finish",
        )

    def route(self) -> ModelRoute:
        return load_routing(self.table).models["churn"]

    def deployment_states(self) -> list[str]:
        with self.world.sandbox.lock:
            made = [
                d
                for d in self.world.sandbox.repos[REGISTRY].deployments.values()
                if d.environment == "production/churn"
            ]
            assert len(made) <= 1, "one deployment per rollout"
            return [s.state for s in made[0].statuses] if made else []

    def deployment(self) -> Any:
        with self.world.sandbox.lock:
            (made,) = [
                d
                for d in self.world.sandbox.repos[REGISTRY].deployments.values()
                if d.environment == "production/churn"
            ]
            return made

    def deployment_descriptions(self, *, ending: str) -> list[str]:
        """The deployment's status descriptions, oldest first, once the newest is `ending`
        (statuses are outbox effects: they may land just after the check run)."""
        found: list[str] = wait_until(
            lambda: (
                (shown := [s.description for s in self.deployment().statuses])
                and shown[-1] == ending
                and shown
            ),
            timeout_s=30,
            what=f"the deployment to show {ending!r}",
        )
        return found

    def revert_pulls(self) -> list[Any]:
        with self.world.sandbox.lock:
            return [
                p
                for p in self.world.sandbox.repos[REGISTRY].pulls.values()
                if p.head_ref.startswith("shipyard/revert-")
            ]


def _scrape_config(gateway_url: str) -> str:
    target = gateway_url.removeprefix("http://")
    return (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
        "scrape_configs:\n  - job_name: gateway\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )


@pytest.fixture
def production(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path
) -> Iterator[Production]:
    require("prometheus")
    latency = getattr(request, "param", LENIENT_LATENCY)
    store, table = tmp_path / "artifacts", tmp_path / "routing.json"
    sha = ArtifactStore(str(store)).publish(
        fixture_dir("production"), model="churn", version=PRODUCTION_VERSION
    )
    save_routing(
        table,
        Routing(
            revision=1,
            models={
                "churn": ModelRoute(production=Deployed(version=PRODUCTION_VERSION, sha256=sha))
            },
        ),
    )
    clock = WallClock()
    behind_nginx = request.node.get_closest_marker("behind_nginx") is not None
    config = GatewayConfig(
        store_url=str(store),
        routing_path=table,
        reload_every_s=0.1,
        log_share=0.0,
        clock=clock,
        behind_router=behind_nginx,
        router_token=ROUTER_TOKEN_FOR_NGINX if behind_nginx else None,
    )
    (tmp_path / "prometheus").mkdir()
    with (
        PagerDutySandboxServer(PagerDutyState(routing_key=ROUTING_KEY)) as pagerduty,
        running_gateway(config) as gateway,
        running_prometheus(tmp_path / "prometheus", _scrape_config(gateway.url)) as prometheus,
        _nginx_in_front(tmp_path, table, gateway, enabled=behind_nginx) as (front, nginx_file),
    ):
        world = RegistryWorld(
            fixtures=FIXTURES,
            app_keypair=shared_app_keypair(),
            database_url=postgres_url,
            clock=clock,
            settings_overrides={
                "canary_artifact_store": str(store),
                "canary_routing_table": table,
                "canary_gateway_url": "http://gateway.production.test",
                "canary_prometheus_url": prometheus,
                "canary_check_interval_s": 1,
                "canary_nginx": nginx_file,
                "pagerduty_events_url": pagerduty.url,
                "pagerduty_routing_key": ROUTING_KEY,
            },
        )
        traffic = Traffic(front)
        rig = start_slack_world(
            world,
            cache_dir=tmp_path / "cache",
            canary={**QUICK_CANARY, "latency": latency},
        )
        try:
            wait_until(
                lambda: gateway.client.get("/v2/models/churn/ready").status_code == 200,
                timeout_s=60,
                what="the gateway to serve production",
            )
            yield Production(rig, world, table, gateway, pagerduty, traffic)
            assert world.sandbox.violations == []
        finally:
            traffic.stop()
            rig.close()
            world.close()
            clock.close()


@contextmanager
def _nginx_in_front(
    tmp_path: Path, table: Path, gateway: RunningGateway, *, enabled: bool
) -> Iterator[tuple[Any, Path | None]]:
    """nginx in front of the gateway, started from the configuration `shipyard nginx-config`
    writes (production as the gateway's table has it), when the test asks for it."""
    if not enabled:
        yield gateway, None
        return
    pool = f"{{'*': {{'*': '{gateway.url.removeprefix('http://')}'}}}}"
    nginx_file = nginx_router_file(tmp_path, upstreams=pool, token=ROUTER_TOKEN_FOR_NGINX)
    with (
        nginx_started(table, nginx_file) as router,
        httpx.Client(base_url=f"http://127.0.0.1:{router.port}", timeout=30) as client,
    ):
        yield RunningGateway(f"http://127.0.0.1:{router.port}", client), nginx_file


@pytest.mark.behind_nginx
def test_behind_nginx_a_healthy_canary_steps_up_and_is_promoted(production: Production) -> None:
    production.traffic.start()
    number = production.merge("candidate_better")
    run = production.finished(number)

    assert run.conclusion == "success", run.output
    route = production.route()  # the gateways' table, kept equal to nginx's
    assert route.production.version.startswith(f"pr{number}-") and route.canary is None
    config = (production.table.parent / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    assert f"production {route.production.version}" in config and "split_clients" not in config
    # nginx split the traffic: the canary answered live requests before it was promoted.
    assert production.traffic.by_variant.get("canary", 0) > 0
    # At most a request per reload met a keep-alive connection nginx was closing.
    assert production.traffic.by_variant.get("disconnected", 0) <= 5, production.traffic.by_variant
    assert production.pagerduty.incidents() == []


def test_a_healthy_canary_steps_up_to_100_percent_and_is_promoted(production: Production) -> None:
    production.traffic.start()
    number = production.merge("candidate_better")
    run = production.finished(number)

    assert run.conclusion == "success", run.output
    assert "promoted" in run.output["title"]
    route = production.route()
    assert route.production.version.startswith(f"pr{number}-") and route.canary is None
    states = wait_until(
        lambda: (found := production.deployment_states()) and found[-1] == "success" and found,
        timeout_s=30,
        what="the deployment to show success",
    )
    assert states[0] == "in_progress"
    assert "failure" not in states
    deployment = production.deployment()
    assert deployment.production_environment and not deployment.transient_environment
    # Each step was a status, in order, none twice.
    descriptions = production.deployment_descriptions(
        ending="Promoted: answers all production traffic"
    )
    assert descriptions == [
        "Canary answers 25% of production traffic",
        "Canary answers 50% of production traffic",
        "Canary answers 100% of production traffic",
        "Promoted: answers all production traffic",
    ]
    assert production.revert_pulls() == []
    assert production.pagerduty.incidents() == []
    # The canary answered live requests before it was promoted.
    assert production.traffic.by_variant.get("canary", 0) > 0


@pytest.mark.parametrize("production", [STRICT_LATENCY], indirect=True)
def test_a_slow_canary_is_rolled_back_with_a_revert_pr_slack_and_one_page(
    production: Production,
) -> None:
    production.traffic.start()
    # PagerDuty takes the page but its answer is lost: the outbox sends it again, and
    # PagerDuty's de-duplication keeps it one incident.
    production.pagerduty.arm("process_then_502")
    number = production.merge("candidate_skops")
    run = production.finished(number)

    assert run.conclusion == "failure", run.output
    assert "rolled back at 25%" in run.output["title"]
    assert "latency p" in run.output["summary"]  # the metric table that triggered it
    # Traffic is back on the previous version at once, and stays there.
    route = production.route()
    assert route.production.version == PRODUCTION_VERSION and route.canary is None
    wait_until(
        lambda: production.deployment_states()[-1] == "failure",
        timeout_s=30,
        what="the deployment to show failure",
    )
    # Within one analysis interval of the breach: the first analysis with data rolled it back.
    reverts = wait_until(production.revert_pulls, timeout_s=60, what="the revert PR")
    assert len(reverts) == 1 and reverts[0].base_ref == "main"
    # The revert is recognised, not evaluated as a new candidate: its gate lets it merge.
    gate = wait_until(
        lambda: (
            (run := production.world.check_run(reverts[0].number, "Shipyard / promotion-gate"))
            is not None
            and run.conclusion
            and run
        ),
        timeout_s=60,
        what="the revert PR's gate",
    )
    assert gate.conclusion == "success", gate.output
    assert gate.output["title"] == "Restores what production runs after a rollback"
    incidents = wait_until(production.pagerduty.incidents, timeout_s=60, what="the page")
    assert len(incidents) == 1
    summary = incidents[0]["summary"]
    assert summary.startswith(f"Rolled back churn pr{number}-"), summary
    assert f"→{PRODUCTION_VERSION} at 25%: p" in summary
    assert incidents[0]["status"] == "triggered"
    message = production.rig.the_message(containing="rolled back")
    assert "rolled back at 25%" in str(message.blocks)
    # The report comment shows the metric table that triggered it.
    report = wait_until(
        lambda: next(
            (
                c.body
                for c in production.world.sandbox.comments_on(REGISTRY, number)
                if "Production rollout (canary)" in c.body and "rolled back" in c.body
            ),
            None,
        ),
        timeout_s=60,
        what="the report comment's canary section",
    )
    assert "| latency p50 |" in report
    # The lost answer was retried (two triggers reached PagerDuty) into the one incident.
    wait_until(
        lambda: len(production.pagerduty.incidents()[0]["events"]) == 2,
        timeout_s=90,
        what="the page to be sent again",
    )
    assert len(production.pagerduty.incidents()) == 1

    # The bot restarted after all this: nothing is rolled back, opened or paged again.
    production.rig.restart_bot()
    production.world.pass_time(timedelta(minutes=5))
    wait_until(production.world.idle, timeout_s=60, what="the bot to settle")
    assert len(production.revert_pulls()) == 1
    assert len(production.pagerduty.incidents()) == 1
    assert production.deployment_states().count("failure") == 1

    # A person acknowledges: the incident is resolved, once.
    production.world.sandbox.add_comment(REGISTRY, number, "/ack looking at it", "lead-ml")
    wait_until(
        lambda: production.pagerduty.incidents()[0]["status"] == "resolved",
        timeout_s=60,
        what="the incident to be resolved",
    )
    assert len(production.pagerduty.incidents()) == 1


def test_a_canary_without_traffic_holds_then_pauses_and_pages(production: Production) -> None:
    number = production.merge("candidate_better")  # no traffic at all
    held = wait_until(
        lambda: (
            (run := production.canary(number)) is not None
            and "no canary" in run.output["title"].lower()
            and run
        ),
        timeout_s=90,
        what="the canary to hold for lack of data",
    )
    assert held.status == "in_progress" and held.conclusion is None
    assert production.route().canary is not None  # holding, not promoted, not rolled back

    production.world.pass_time(timedelta(minutes=4))  # past max_hold_minutes (3)
    paused = wait_until(
        lambda: (
            (run := production.canary(number)) is not None
            and "paused" in run.output["title"]
            and run
        ),
        timeout_s=90,
        what="the canary to pause",
    )
    assert paused.conclusion is None  # never a pass
    incidents = wait_until(production.pagerduty.incidents, timeout_s=60, what="the page")
    assert len(incidents) == 1 and incidents[0]["summary"].startswith("Paused churn")
    assert production.route().production.version == PRODUCTION_VERSION


def test_the_bot_killed_mid_rollout_resumes_without_doubling_anything(
    production: Production,
) -> None:
    world = production.world
    production.traffic.start()
    number = production.merge("candidate_better")
    wait_until(
        lambda: (
            (run := production.canary(number)) is not None
            and "from 25% to 50%" in run.output["title"]
        ),
        timeout_s=120,
        what="the second step",
    )
    production.rig.restart_bot()  # killed mid-step, started again on the same database
    run = production.finished(number)

    assert run.conclusion == "success"
    # Each step shown once, in order, although the bot died in the middle of them.
    assert production.deployment_descriptions(
        ending="Promoted: answers all production traffic"
    ) == [
        "Canary answers 25% of production traffic",
        "Canary answers 50% of production traffic",
        "Canary answers 100% of production traffic",
        "Promoted: answers all production traffic",
    ]
    assert production.route().production.version.startswith(f"pr{number}-")
    assert production.pagerduty.incidents() == []
    assert world.sandbox.violations == []


def test_rollback_from_slack_rolls_the_canary_back(production: Production) -> None:
    production.traffic.start()
    number = production.merge("candidate_better")
    wait_until(
        lambda: (run := production.canary(number)) is not None and "25%" in run.output["title"],
        timeout_s=120,
        what="the canary to start",
    )
    production.rig.people.slash(
        ALICE, "/shipyard", f"rollback {REGISTRY}#{number} the dashboard is red"
    )
    run = production.finished(number)

    assert run.conclusion == "failure"
    assert "/rollback by @lead-ml" in run.output["title"]
    assert production.route().canary is None
    wait_until(production.revert_pulls, timeout_s=60, what="the revert PR")
    assert len(production.revert_pulls()) == 1
    assert production.pagerduty.incidents() == []  # a person's rollback pages nobody


@pytest.mark.parametrize("production", [STRICT_LATENCY], indirect=True)
def test_the_next_successful_rollout_resolves_the_rollbacks_incident(
    production: Production,
) -> None:
    world = production.world
    production.traffic.start()
    slow = production.merge("candidate_skops")
    assert production.finished(slow).conclusion == "failure"
    (incident,) = wait_until(production.pagerduty.incidents, timeout_s=60, what="the page")
    assert incident["status"] == "triggered"
    # The team merges the revert PR (its gate lets it), then a better model.
    (revert,) = wait_until(production.revert_pulls, timeout_s=60, what="the revert PR")
    wait_until(
        lambda: (
            (run := world.check_run(revert.number, "Shipyard / promotion-gate")) is not None
            and run.conclusion == "success"
        ),
        timeout_s=60,
        what="the revert PR's gate",
    )
    with world.sandbox.events():
        world.sandbox.merge_pull(
            REGISTRY, revert.number, merge_method="squash", merged_by="lead-ml"
        )
    better = production.merge("candidate_better")
    run = production.finished(better)

    assert run.conclusion == "success", run.output
    wait_until(
        lambda: production.pagerduty.incidents()[0]["status"] == "resolved",
        timeout_s=60,
        what="the rollback's incident to be resolved",
    )
    assert len(production.pagerduty.incidents()) == 1
