"""Pipeline step 6 end to end: a model promoted by its canary is watched in production.

The bot runs on SQLite and on PostgreSQL with the GitHub, Slack and PagerDuty doubles and the
production gateway (uvicorn, the fixtures' models) on the bot's manual clock. Each monitoring
window is ten minutes of that clock: requests are replayed through the gateway, the clock moves
past the window's end, and the bot's scheduled check judges it from the prediction log.

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
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from rich.console import Console

from bot.base.waiting import wait_until
from bot.cli.demo_canary import (
    DEMO_CANARY,
    ProductionGateway,
    pagerduty,
    production_gateway,
    roll_out,
    settings_for,
)
from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.monitoring.status import MonitorSeen, monitors_of_model
from bot.sandbox.pagerduty import PagerDutySandboxServer
from tests.slack_world import CHANNEL, SlackRig, start_slack_world
from tests.world_fixtures import FIXTURES

WINDOW = timedelta(minutes=10)
ROWS_PER_WINDOW = 240
QUICK_MONITORING = {
    "interval_minutes": 10,
    "windows_to_alert": 2,
    "windows_to_recover": 2,
    "min_rows": 150,
    # The first 15 minutes of production are "the first week": from the second window on,
    # scores are also compared with the first window's.
    "baseline_hours": 0.25,
    # Replayed traffic is as steady as the test makes it; volume has its own tests.
    "quality": {"volume_min_history": 1000},
    # A few hundred rows a window: thresholds above their sampling noise (the shift below is
    # four standard deviations, far above any of them).
    "drift": {
        "psi_warn": 0.3,
        "psi_critical": 0.6,
        "wasserstein_warn": 0.4,
        "wasserstein_critical": 1.0,
        "js_warn": 0.3,
        "js_critical": 0.5,
    },
    "prediction_drift": {
        "psi_warn": 0.3,
        "psi_critical": 0.6,
        "wasserstein_warn": 0.4,
        "wasserstein_critical": 1.0,
    },
}


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
        assert self.world.app is not None
        with self.world.app.state.ctx.store.session() as session:
            seen = monitors_of_model(session, model="churn", repository=REGISTRY)
        return seen[0] if seen else None

    def caught_up(self) -> MonitorSeen:
        """The monitor once every window that ended has been judged (the next one starts now)."""
        now = self.world.clock.now()
        seen: MonitorSeen = wait_until(
            lambda: (m := self.monitor()) is not None and m.window_end == now and m,
            timeout_s=60,
            what="the monitor to judge every ended window",
        )
        return seen

    def window(self, *, drifted: bool) -> MonitorSeen:
        """Ten minutes of production traffic, then the clock past the window's end; returns
        the monitor once the bot has judged that window."""
        first = self.caught_up()
        rows = self.shifted if drifted else self.clean
        self.gateway.x = rows[np.random.default_rng(self.windows).permutation(len(rows))]
        self.gateway.replay(ROWS_PER_WINDOW, prefix=f"w{self.windows}")
        self.windows += 1
        end = first.window_end + WINDOW
        self.world.pass_time(WINDOW)
        seen: MonitorSeen = wait_until(
            lambda: (m := self.monitor()) is not None and m.window_end >= end and m,
            timeout_s=60,
            what=f"window {self.windows} to be judged",
        )
        # Its alerts handed over (issue, Slack, page) before the next window starts.
        wait_until(self.world.idle, timeout_s=60, what="the bot to be idle")
        return seen

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
            settings_overrides={**settings_for(tmp_path, pd_server.url), "monitor_grace_s": 0},
        )
        try:
            with production_gateway(world, FIXTURES, tmp_path) as gateway:
                rig = start_slack_world(
                    world,
                    cache_dir=tmp_path / "cache",
                    canary=DEMO_CANARY,
                    monitoring=QUICK_MONITORING,
                )
                try:
                    clean = gateway.x.copy()
                    shifted = clean.copy()
                    shifted[:, :3] += 4 * clean[:, :3].std(axis=0) + 1
                    yield Watched(rig, world, gateway, pd_server, clean, shifted)
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
    # judged once a whole window has passed, and clean.
    monitor = wait_until(watched.monitor, timeout_s=60, what="monitoring to start")
    if monitor.window_end < world.clock.now():
        world.pass_time(monitor.window_end + WINDOW - world.clock.now())
    assert watched.caught_up().last_severity in (None, "ok")
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
