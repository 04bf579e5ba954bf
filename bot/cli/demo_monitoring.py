"""`shipyard demo`'s epilogue: the promoted model is watched in production, and the world moves.

Monitoring windows are ten minutes of the demo's clock and hold a few hundred replayed requests,
so the demo policy's drift thresholds sit above that sample's noise (production windows hold
thousands; the defaults are docs/monitoring.md's). Then three inputs shift by four standard
deviations — a pricing change nobody told the model about — and after two drifted windows in a
row the team gets a GitHub issue per alerting check in the registry, linked to the PR that
promoted the model, and on-call one incident per critical check (feature drift; the scores move
too); the window's drift report is saved beside the others.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from bot.base.waiting import wait_until
from bot.cli.demo_canary import ProductionGateway
from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.monitoring.status import MonitorSeen, monitors_of_model
from bot.sandbox.pagerduty import PagerDutySandboxServer

WINDOW_MINUTES = 10
ROWS_PER_WINDOW = 240
SHIFTED_FEATURES = 3
DEMO_MONITORING: dict[str, Any] = {
    "interval_minutes": WINDOW_MINUTES,
    "windows_to_alert": 2,
    "windows_to_recover": 2,
    "min_rows": 150,
    # The demo's first 15 minutes in production stand for "the first week".
    "baseline_hours": 0.25,
    "quality": {"volume_min_history": 1000},  # replayed traffic has no usual level to speak of
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


def monitor_of(world: RegistryWorld, model: str = "churn") -> MonitorSeen | None:
    """The newest watched version of `model`, as `shipyard monitor` shows it."""
    assert world.app is not None
    with world.app.state.ctx.store.session() as session:
        seen = monitors_of_model(session, model=model, repository=REGISTRY, limit=1)
    return seen[0] if seen else None


def caught_up(world: RegistryWorld) -> MonitorSeen:
    """The monitor once every window that has ended is judged and the next one starts now
    (the clock is moved to the end of a window already begun)."""
    window = timedelta(minutes=WINDOW_MINUTES)

    def judged(until: Any) -> MonitorSeen | None:
        seen = monitor_of(world)
        return seen if seen is not None and seen.window_end + window > until else None

    seen: MonitorSeen = wait_until(
        lambda: judged(world.clock.now()), timeout_s=60, what="the monitor's ended windows"
    )
    if seen.window_end < world.clock.now():
        world.pass_time(seen.window_end + window - world.clock.now())
        now = world.clock.now()
        seen = wait_until(
            lambda: (m := monitor_of(world)) is not None and m.window_end == now and m,
            timeout_s=60,
            what="the monitor to judge the window",
        )
    return seen


def shifted(x: np.ndarray) -> np.ndarray:
    moved = x.copy()
    moved[:, :SHIFTED_FEATURES] += 4 * x[:, :SHIFTED_FEATURES].std(axis=0) + 1
    return moved


def one_window(
    world: RegistryWorld, gateway: ProductionGateway, rows: np.ndarray, *, seed: int
) -> MonitorSeen:
    """A window of production traffic; the monitor once the bot has judged it."""
    caught_up(world)
    clean = gateway.x
    try:
        gateway.x = rows[np.random.default_rng(seed).permutation(len(rows))]
        gateway.replay(ROWS_PER_WINDOW, prefix=f"monitor-{seed}")
    finally:
        gateway.x = clean
    world.pass_time(timedelta(minutes=WINDOW_MINUTES))
    seen = caught_up(world)
    wait_until(world.idle, timeout_s=60, what="the bot to hand over the alerts")
    return seen


def _status_line(seen: MonitorSeen) -> str:
    return ", ".join(f"{c.check} {c.status}" for c in seen.checks)


def drift_act(
    console: Console,
    world: RegistryWorld,
    gateway: ProductionGateway,
    pagerduty: PagerDutySandboxServer,
    out_dir: Path,
) -> bool:
    """Clean windows, then drifted ones; True when the drift reached people once per check."""
    before = len(pagerduty.incidents())
    clean = gateway.x
    for seed in range(2):
        seen = one_window(world, gateway, clean, seed=seed)
        console.print(f"  [dim]{world.clock.now():%H:%M}[/] window judged: {_status_line(seen)}")
    console.print(
        f"[bold]Prices change: {SHIFTED_FEATURES} inputs move by four standard deviations[/]"
    )
    drifted = shifted(clean)
    for seed in range(2, 4):
        seen = one_window(world, gateway, drifted, seed=seed)
        console.print(f"  [dim]{world.clock.now():%H:%M}[/] window judged: {_status_line(seen)}")
    with world.sandbox.lock:
        issues = [
            i
            for i in world.sandbox.repos[REGISTRY].issues.values()
            if "shipyard-monitoring" in i.labels
        ]
    drift_issue = next((i for i in issues if i.title.startswith("Feature drift")), None)
    if drift_issue is not None:
        console.print(
            Panel(
                Markdown(drift_issue.body),
                title=f"Issue #{drift_issue.number}: {drift_issue.title}",
            )
        )
    for issue in issues:
        if issue is not drift_issue:
            console.print(f"Issue #{issue.number}: {issue.title}")
    pages = pagerduty.incidents()[before:]
    for page in pages:
        console.print(f"PagerDuty ({page['severity']}): [bold]{page['summary']}[/]")
    if seen.last_report_id and world.bot is not None:
        html = httpx.get(f"{world.bot.url}/drift/{seen.last_report_id}", timeout=30)
        path = out_dir / "drift-report.html"
        path.write_text(html.text)
        console.print(f"Drift report written to {path}")
    # One issue per alerting check, one incident per critical one.
    alerting = [c for c in seen.checks if c.status != "ok"]
    critical = [c for c in alerting if c.status == "critical"]
    return (
        drift_issue is not None
        and any(c.check == "feature drift" for c in critical)
        and len(issues) == len(alerting)
        and len(pages) == len(critical)
    )


__all__ = ["DEMO_MONITORING", "caught_up", "drift_act", "monitor_of", "one_window", "shifted"]
