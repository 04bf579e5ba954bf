"""`shipyard demo`: the whole story against the local GitHub sandbox, printed as a reviewer sees it.

PR 1 proposes a clearly better churn model: it is evaluated, the report is posted, the
review window passes (the clock is moved, not slept through) and the bot merges it.
PR 2 regresses on a segment: it needs review, and a reviewer blocks it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table

from bot.registry_world import REGISTRY, RegistryWorld
from bot.waiting import wait_until

REVIEWER = "lead-ml"
ONCALL = "oncall-ml"


def _gate(world: RegistryWorld, number: int) -> Any:
    sha = world.head_sha(number)

    def settled() -> Any:
        run = world.sandbox.check_run_named(REGISTRY, sha, "Shipyard / promotion-gate")
        return run if run is not None and run.status == "completed" else None

    return wait_until(settled, timeout_s=180, what=f"the gate of PR #{number}")


def _checks_table(world: RegistryWorld, number: int) -> Table:
    table = Table(title=f"Checks on {world.head_sha(number)[:7]}", show_lines=False)
    for column in ("check", "status", "conclusion", "title"):
        table.add_column(column)
    for run in world.sandbox.check_runs_for(REGISTRY, world.head_sha(number)):
        table.add_row(run.name, run.status, run.conclusion or "", run.output.get("title", ""))
    return table


def _timeline(console: Console, world: RegistryWorld, number: int) -> None:
    pull = world.sandbox.pull(REGISTRY, number)
    state = "merged" if pull.merged else pull.state
    console.rule(f"PR #{number}: {pull.title} — {state}")
    console.print(_checks_table(world, number))
    for comment in world.sandbox.comments_on(REGISTRY, number):
        body = comment.body
        if body.startswith("<!-- shipyard:pr-report -->"):
            body = (
                body.split("\n#### Segments", 1)[0] + "\n\n*(segment tables, calibration, "
                "latency and audit trail follow in the comment)*"
            )
        console.print(
            Panel(Markdown(body), title=f"{comment.user_login} · {comment.created_at:%H:%M} UTC")
        )


def _save_report(world: RegistryWorld, number: int, out_dir: Path) -> Path | None:
    run = world.sandbox.check_run_named(
        REGISTRY, world.head_sha(number), "Shipyard / evaluation (churn)"
    )
    if run is None or not run.details_url or world.bot is None:
        return None
    url = run.details_url.replace(world.settings.public_url, world.bot.url)
    html = httpx.get(url, timeout=30)
    path = out_dir / f"report-pr{number}.html"
    path.write_text(html.text)
    return path


def run_demo(*, fixtures: Path, out_dir: Path, console: Console | None = None) -> int:
    """Run the story; returns 0 when it ends as it should."""
    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    database = out_dir / "shipyard-demo.db"
    database.unlink(missing_ok=True)
    world = RegistryWorld(fixtures=fixtures.resolve(), database_url=f"sqlite:///{database}")
    try:
        with console.status("Starting the GitHub sandbox and the bot…"):
            world.create_registry()
            world.start_bot(cache_dir=out_dir / "prediction-cache")
        console.print(
            f"GitHub sandbox at {world.sandbox_server.url}; bot at {world.bot and world.bot.url}"
        )

        with console.status("Two PRs: a clearly better model, and one worse on a segment…"):
            first = world.open_candidate_pr("candidate_better", author="data-scientist")
            second = world.open_candidate_pr("candidate_segment_regression", author="analyst")
            for number in (first, second):
                gate = _gate(world, number)
                console.print(
                    f"PR #{number} gate: [bold]{gate.conclusion}[/] — {gate.output['title']}"
                )
        with console.status(f"PR #{second}: on-call reads the report and blocks it…"):
            world.sandbox.set_permission(REGISTRY, ONCALL, "write")
            world.sandbox.add_comment(
                REGISTRY,
                second,
                "The public-sector drop matters for the Q1 renewals.\n\n"
                "/block public_sector AUC regressed; needs the account team's sign-off",
                ONCALL,
            )
            wait_until(
                lambda: "Blocked" in _gate(world, second).output["title"],
                timeout_s=180,
                what="the block",
            )
        console.print("Moving the clock 24 hours forward (the review window)…")
        world.pass_time(timedelta(hours=24, minutes=1))
        wait_until(
            lambda: world.sandbox.pull(REGISTRY, first).merged, timeout_s=180, what="the auto-merge"
        )
        # PR 1 changed production: PR 2's evidence is stale and is measured again.
        wait_until(world.idle, timeout_s=180, what="the bot to settle")
        _timeline(console, world, first)
        _timeline(console, world, second)

        reports = [p for p in (_save_report(world, n, out_dir) for n in (first, second)) if p]
        for path in reports:
            console.print(f"HTML report written to {path}")
        merged = world.sandbox.pull(REGISTRY, first).merged
        blocked = not world.sandbox.pull(REGISTRY, second).merged
        mark = "✅" if merged and blocked else "❌"
        console.print(
            f"[bold]{mark} PR #{first} merged by the bot: {merged}; "
            f"PR #{second} blocked and not merged: {blocked}[/]"
        )
        return 0 if merged and blocked else 1
    finally:
        world.close()
