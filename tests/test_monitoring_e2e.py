"""Pipeline step 6 end to end: a model promoted by its canary is watched in production.

The bot runs on SQLite and on PostgreSQL with the GitHub, Slack and PagerDuty doubles and the
production gateway (uvicorn, the fixtures' models) on the bot's manual clock, with the demo's
monitoring policy (bot/cli/demo_monitoring.py). Each window is ten minutes of that clock:
requests are replayed through the gateway, the clock moves past the window's end, and the bot's
scheduled check judges it from the prediction log.

The story a team lives through: clean windows raise nothing; three features shifted by four
standard deviations raise an alert after two windows in a row (policy `windows_to_alert`) — a
GitHub issue in the registry linked to the promoting PR, a Slack message and, as the drift is
critical, exactly one PagerDuty incident; the bot restarted mid-episode doubles nothing; two
clean windows resolve it: the issue closes, the incident resolves, the message says so.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from bot.base.waiting import wait_until
from bot.cli.demo_canary import (
    DEMO_CANARY,
    ProductionGateway,
    pagerduty,
    production_gateway,
    roll_out,
    settings_for,
)
from bot.cli.demo_monitoring import DEMO_MONITORING, caught_up, monitor_of, one_window, shifted
from bot.cli.main import app
from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.monitoring.status import MonitorSeen
from bot.sandbox.pagerduty import PagerDutySandboxServer
from tests.slack_world import CHANNEL, SlackRig, start_slack_world
from tests.world_fixtures import FIXTURES


@dataclass
class Watched:
    rig: SlackRig
    world: RegistryWorld
    gateway: ProductionGateway
    pagerduty: PagerDutySandboxServer
    clean: np.ndarray
    shifted: np.ndarray
    windows: int = 0

    def monitor(self) -> MonitorSeen | None:
        return monitor_of(self.world)

    def window(self, *, drifted: bool) -> MonitorSeen:
        """Ten minutes of production traffic; the monitor once the bot has judged them."""
        self.windows += 1
        rows = self.shifted if drifted else self.clean
        return one_window(self.world, self.gateway, rows, seed=self.windows)

    def issues(self) -> list[Any]:
        with self.world.sandbox.lock:
            return [
                issue
                for issue in self.world.sandbox.repos[REGISTRY].issues.values()
                if "shipyard-monitoring" in issue.labels
            ]

    def incidents(self) -> list[dict[str, Any]]:
        return self.pagerduty.incidents()

    def alerts_in_slack(self) -> list[Any]:
        return [
            m
            for m in self.rig.slack.channel_messages(CHANNEL)
            if "drift" in m.text.lower() or "data quality" in m.text.lower()
        ]


@pytest.fixture
def watched(database_url: str, tmp_path: Path) -> Iterator[Watched]:
    with pagerduty() as pd_server:
        world = RegistryWorld(
            fixtures=FIXTURES,
            database_url=database_url,
            settings_overrides=settings_for(tmp_path, pd_server.url),
        )
        try:
            with production_gateway(world, FIXTURES, tmp_path) as gateway:
                rig = start_slack_world(
                    world,
                    cache_dir=tmp_path / "cache",
                    canary=DEMO_CANARY,
                    monitoring=DEMO_MONITORING,
                )
                try:
                    clean = gateway.x.copy()
                    yield Watched(rig, world, gateway, pd_server, clean, shifted(clean))
                    assert world.sandbox.violations == []
                finally:
                    rig.close()
        finally:
            world.close()


def _promote(watched: Watched) -> int:
    """PR candidate_better: evaluated, merged by a maintainer, rolled out to 100%."""
    world = watched.world
    number = world.open_candidate_pr("candidate_better")
    wait_until(
        lambda: (
            (run := world.check_run(number, "Shipyard / promotion-gate")) is not None
            and run.conclusion
        ),
        timeout_s=180,
        what="the evaluation",
    )
    with world.sandbox.events():
        world.sandbox.merge_pull(REGISTRY, number, merge_method="squash", merged_by="lead-ml")
    run = roll_out(Console(file=io.StringIO()), world, watched.gateway, number)
    assert run.conclusion == "success"
    # The rollout's last traffic (sent before its promotion was seen) is the first window:
    # judged once a whole window has passed, and raises nothing. How much of that traffic
    # falls after the promotion depends on when the demo loop sees it: once in CI the window
    # held too few rows to judge (no data), which is not an alert either.
    wait_until(watched.monitor, timeout_s=60, what="monitoring to start")
    assert caught_up(world).last_severity in (None, "ok", "no_data")
    return number


def test_drift_alerts_once_per_episode_across_a_restart_and_resolves(watched: Watched) -> None:
    number = _promote(watched)
    monitor = watched.monitor()
    assert monitor is not None and monitor.pr_number == number

    # Clean traffic: nothing to tell anyone.
    for _ in range(2):
        seen = watched.window(drifted=False)
        assert {c.status for c in seen.checks} == {"ok"}, seen.lines
    assert seen.last_severity == "ok"
    assert watched.issues() == [] and watched.incidents() == []

    # One drifted window is not yet an alert; the second in a row is.
    seen = watched.window(drifted=True)
    assert dict((c.check, c.status) for c in seen.checks)["feature drift"] == "ok"
    assert watched.issues() == []
    seen = watched.window(drifted=True)
    status = {c.check: c.status for c in seen.checks}
    assert status["feature drift"] == "critical"
    issues = wait_until(watched.issues, timeout_s=30, what="the monitoring issues")
    titles = sorted(i.title for i in issues)
    assert any(t.startswith("Feature drift on churn") and t.endswith("critical") for t in titles)
    drift_issue = next(i for i in issues if i.title.startswith("Feature drift"))
    assert f"#{number}" in drift_issue.body  # linked to the PR that promoted the model
    assert drift_issue.state == "open"
    incidents = wait_until(watched.incidents, timeout_s=30, what="the page")
    assert {i["severity"] for i in incidents} == {"critical"}
    assert any("feature_drift" in i["dedup_key"] for i in incidents)
    assert len({i["dedup_key"] for i in incidents}) == len(incidents)  # one per episode

    # The drift report the issue links to is served, worst feature first.
    report_ids = re.findall(r"/drift/([A-Za-z0-9_-]+)\)", drift_issue.body)
    assert len(report_ids) == 2  # one per window of the episode so far
    assert watched.world.bot is not None
    page = httpx.get(f"{watched.world.bot.url}/drift/{report_ids[-1]}")
    assert page.status_code == 200
    assert page.text.index("monthly_spend") < page.text.index("logins_30d")  # worst first

    # Where else people look: /status on the promoting PR, `shipyard monitor`, /metrics.
    watched.world.sandbox.add_comment(REGISTRY, number, "/status", "reader")
    reply = wait_until(
        lambda: next(
            (
                c.body
                for c in watched.world.sandbox.comments_on(REGISTRY, number)
                if c.body.startswith("@reader")
            ),
            None,
        ),
        timeout_s=60,
        what="the /status reply",
    )
    assert "Production churn" in reply and "feature drift critical since" in reply
    printed = CliRunner().invoke(
        app, ["monitor", "churn"], env={"SHIPYARD_DATABASE_URL": watched.world.database_url}
    )
    assert printed.exit_code == 0, printed.output
    assert "feature drift     critical since" in printed.output
    assert "Drift in monthly_spend" in printed.output
    metrics = httpx.get(f"{watched.world.bot.url}/metrics").text
    alert_lines = [
        line for line in metrics.splitlines() if line.startswith("shipyard_monitor_alert{")
    ]
    assert any('check="feature_drift"' in line and line.endswith(" 2.0") for line in alert_lines)
    assert any(
        line.startswith("shipyard_monitor_drift{")
        and 'feature="monthly_spend"' in line
        and 'statistic="psi"' in line
        for line in metrics.splitlines()
    )

    # Killed mid-episode and started again: the next window updates, never doubles.
    watched.rig.restart_bot()
    watched.window(drifted=True)
    assert len(watched.issues()) == len(issues)
    drift_issue = next(i for i in watched.issues() if i.title.startswith("Feature drift"))
    assert drift_issue.body.count("| critical |") == 3  # the episode's windows 3, 4 and 5
    assert len(watched.incidents()) == len(incidents)

    # Two clean windows in a row: resolved everywhere.
    watched.window(drifted=False)
    seen = watched.window(drifted=False)
    assert {c.status for c in seen.checks} == {"ok"}
    closed = wait_until(
        lambda: all(i.state == "closed" for i in watched.issues()) and watched.issues(),
        timeout_s=30,
        what="the issues to close",
    )
    assert len(closed) == len(issues)
    assert all(i.title.endswith("resolved") for i in closed)
    wait_until(
        lambda: all(i["status"] == "resolved" for i in watched.incidents()),
        timeout_s=30,
        what="the incidents to resolve",
    )
    assert len(watched.incidents()) == len(incidents)
    messages = watched.alerts_in_slack()
    assert len(messages) == len(issues)  # one message per episode, edited in place
    assert all("resolved" in m.text for m in messages)
