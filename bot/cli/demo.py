"""`shipyard demo`: the whole story against the local GitHub sandbox, printed as a reviewer sees it.

PR 1 proposes a clearly better churn model: it is evaluated, the report is posted, the
review window passes (the clock is moved, not slept through) and the bot merges it.
PR 2 regresses on a segment: it needs review, and a reviewer blocks it. When PR 1 merges,
production has changed, so PR 2's evidence is stale: it is evaluated again, against PR 1's model.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table

from bot.base.waiting import wait_until
from bot.cli import demo_canary, demo_monitoring
from bot.cli.registry_world import MAINTAINER, REGISTRY, RegistryWorld
from bot.promotion import audit
from bot.sandbox.pagerduty import PagerDutySandboxServer

REVIEWER = "lead-ml"
ONCALL = "oncall-ml"
# A busy laptop times a sub-millisecond model at a few ms now and then; in the demo that noise
# must not turn the clearly better model into "needs review", so anything this fast is fine.
DEMO_LATENCY_FLOOR_MS = 25.0
DEMO_LATENCY_REQUESTS = 200


def demo_policy(fixtures: Path) -> str:
    """The fixture policy, with a latency floor that tolerates a busy machine."""
    policy = yaml.safe_load((fixtures / "registry/shipyard.yml").read_text())
    latency = policy.setdefault("latency", {})
    latency["floor_ms"] = DEMO_LATENCY_FLOOR_MS
    # Fewer timed requests than the fixture policy's 500: at this floor a verdict needs no
    # more, and the skops model's single-row calls (about 1 ms each) are seconds of the story.
    latency["requests"] = DEMO_LATENCY_REQUESTS
    return yaml.safe_dump(policy, sort_keys=False)


def _gate(world: RegistryWorld, number: int) -> Any:
    sha = world.head_sha(number)

    def settled() -> Any:
        run = world.sandbox.check_run_named(REGISTRY, sha, "Shipyard / promotion-gate")
        return run if run is not None and run.status == "completed" else None

    return wait_until(settled, timeout_s=180, what=f"the gate of PR #{number}")


EVALUATION_CHECK = "Shipyard / evaluation (churn)"


def _evaluation_title(world: RegistryWorld, number: int) -> str:
    run = world.check_run(number, EVALUATION_CHECK)
    return str(run.output.get("title", "")) if run is not None else "(no evaluation)"


def _stale(world: RegistryWorld, number: int) -> bool:
    """The bot recorded that production changed under this PR and is evaluating it again."""
    assert world.app is not None
    with world.app.state.ctx.store.session() as session:
        trail = audit.trail(session, repository=REGISTRY, pr_number=number)
        return any(event.kind == "evidence_stale" for event in trail)


def _checks_table(world: RegistryWorld, number: int) -> Table:
    table = Table(title=f"Checks on {world.head_sha(number)[:7]}", show_lines=False)
    for column in ("check", "status", "conclusion", "title"):
        table.add_column(column)
    latest: dict[str, Any] = {}
    for run in world.sandbox.check_runs_for(REGISTRY, world.head_sha(number)):
        latest.setdefault(run.name, run)  # newest first: what branch protection reads
    for name in sorted(latest):  # a stable order, whatever order the runs were created in
        run = latest[name]
        table.add_row(run.name, run.status, run.conclusion or "", run.output.get("title", ""))
    return table


REPORT_MARKER = "<!-- shipyard:pr-report -->"


def _has_report(world: RegistryWorld, number: int) -> bool:
    return any(
        comment.body.startswith(REPORT_MARKER)
        for comment in world.sandbox.comments_on(REGISTRY, number)
    )


def _timeline(console: Console, world: RegistryWorld, number: int) -> None:
    pull = world.sandbox.pull(REGISTRY, number)
    state = "merged" if pull.merged else pull.state
    console.rule(f"PR #{number}: {pull.title} — {state}")
    console.print(_checks_table(world, number))
    for comment in world.sandbox.comments_on(REGISTRY, number):
        body = comment.body
        if body.startswith(REPORT_MARKER):
            body = (
                body.split("\n#### Segments", 1)[0] + "\n\n*(segment tables, calibration, "
                "latency and audit trail follow in the comment)*"
            )
        console.print(
            Panel(Markdown(body), title=f"{comment.user_login} · {comment.created_at:%H:%M} UTC")
        )


def _save_report(world: RegistryWorld, number: int, out_dir: Path) -> Path | None:
    run = world.check_run(number, EVALUATION_CHECK)
    if run is None or not run.details_url or world.bot is None:
        return None
    url = run.details_url.replace(world.settings.public_url, world.bot.url)
    html = httpx.get(url, timeout=30)
    path = out_dir / f"report-pr{number}.html"
    path.write_text(html.text)
    return path


def run_demo(
    *,
    fixtures: Path,
    out_dir: Path,
    console: Console | None = None,
    port: int | None = None,
    sandbox_port: int | None = None,
) -> int:
    """Run the story; returns 0 when it ends as it should."""
    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    database = (out_dir / "shipyard-demo.db").resolve()
    database.unlink(missing_ok=True)
    world = RegistryWorld(
        fixtures=fixtures.resolve(),
        database_url=f"sqlite:///{database}",
        sandbox_port=sandbox_port,
    )
    production_root = out_dir.resolve() / "production-gateway"
    shutil.rmtree(production_root, ignore_errors=True)
    fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-report")
    try:
        with (
            demo_canary.pagerduty() as pagerduty,
            demo_canary.production_gateway(world, fixtures.resolve(), production_root) as gateway,
        ):
            return _story(
                console, world, fetcher, out_dir, pagerduty, gateway, production_root, port
            )
    except (TimeoutError, demo_canary.GatewayExited) as exc:  # say where it stopped, no traceback
        console.print(f"[bold red]The demo stopped: {exc}.[/]")
        return 1
    finally:
        fetcher.shutdown(wait=True)
        world.close()


def _story(
    console: Console,
    world: RegistryWorld,
    fetcher: ThreadPoolExecutor,
    out_dir: Path,
    pagerduty: PagerDutySandboxServer,
    gateway: demo_canary.ProductionGateway,
    production_root: Path,
    port: int | None,
) -> int:
    fixtures = world.fixtures
    with console.status("Starting the GitHub sandbox and the bot…"):
        policy = yaml.safe_load(demo_policy(fixtures))
        policy["canary"] = demo_canary.DEMO_CANARY
        policy["monitoring"] = demo_monitoring.DEMO_MONITORING
        world.create_registry(policy_text=yaml.safe_dump(policy, sort_keys=False))
        # Two evaluation workers: the PRs are evaluated at once, as soon as they open
        # (each model runs in its own worker process, so they share both cores).
        world.start_bot(
            cache_dir=out_dir.resolve() / "prediction-cache",
            port=port,
            evaluation_workers=2,
            **demo_canary.settings_for(production_root, pagerduty.url),
        )
    console.print(
        f"GitHub sandbox at {world.sandbox_server.url}; bot at {world.bot and world.bot.url}; "
        f"production gateway at {gateway.url}"
    )

    with console.status("Two PRs: a clearly better model, and one worse on a segment…"):
        first = world.open_candidate_pr("candidate_better", author="data-scientist")
        second = world.open_candidate_pr("candidate_segment_regression", author="analyst")
        for number in (first, second):
            gate = _gate(world, number)
            console.print(f"PR #{number} gate: [bold]{gate.conclusion}[/] — {gate.output['title']}")
    with console.status(f"PR #{second}: on-call reads the report and blocks it…"):
        # The report comment is posted just after the gate settles: read it first.
        wait_until(lambda: _has_report(world, second), timeout_s=180, what="the report")
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
    console.print(
        f"PR #{second} first evaluation, against the production model: "
        f"[bold]{_evaluation_title(world, second)}[/]"
    )
    console.print("Moving the clock 24 hours forward (the review window)…")
    world.pass_time(timedelta(hours=24, minutes=1))
    wait_until(
        lambda: world.sandbox.pull(REGISTRY, first).merged, timeout_s=180, what="the auto-merge"
    )
    # A third PR arrives now, against PR #1's model: its gate and evaluation run beside PR #2's
    # re-evaluation (two evaluation workers), and it is merged after PR #1's rollout.
    third = world.open_candidate_pr("candidate_skops", author="ml-platform")
    console.print(
        f"PR #{third} opened by ml-platform: a HistGradientBoosting model saved with skops, "
        f"against PR #{first}'s model"
    )
    # PR #1's report is final: fetch it while PR #2 is measured again (its first HTML
    # rendering imports matplotlib, about a second, which then overlaps the evaluation).
    first_report = fetcher.submit(_save_report, world, first, out_dir)
    # PR 1 changed production: PR 2's evidence is stale and is measured again.
    with console.status(f"PR #{first} merged: production changed; PR #{second} again…"):
        wait_until(lambda: _stale(world, second), timeout_s=180, what="the stale evidence")
        wait_until(world.idle, timeout_s=300, what="the re-evaluation")
    console.print(
        f"PR #{second} evaluated again, against PR #{first}'s model now in production: "
        f"[bold]{_evaluation_title(world, second)}[/]"
    )
    _timeline(console, world, first)
    _timeline(console, world, second)

    saved = (first_report.result(), _save_report(world, second, out_dir))
    reports = [path for path in saved if path]
    for path in reports:
        console.print(f"HTML report written to {path}")
    # The segment regression is not coming back: its author closes it (it is no longer measured
    # again each time production changes).
    world.sandbox.set_pull_state(REGISTRY, second, state="closed", actor="analyst")
    console.print(f"PR #{second} closed by its author.")

    console.print(
        f"\n[bold]Production: PR #{first}'s model rolls out on the gateway in steps, "
        "judged on live traffic against the model it replaces[/]"
    )
    promoted = demo_canary.roll_out(console, world, gateway, first)
    with console.status(f"PR #{third}: a HistGradientBoosting model saved with skops…"):
        _gate(world, third)
    console.print(
        f"\n[bold]PR #{third}: HistGradientBoosting saved with skops, "
        f"{_evaluation_title(world, third)}; {MAINTAINER} merges it[/]"
    )
    with world.sandbox.events():  # GitHub sends pull_request.closed (merged) at once
        world.sandbox.merge_pull(REGISTRY, third, merge_method="squash", merged_by=MAINTAINER)
    rolled_back = demo_canary.roll_out(console, world, gateway, third)
    incidents = wait_until(pagerduty.incidents, timeout_s=60, what="the page to on-call")
    console.print("\n[bold]What on-call receives:[/]")
    demo_canary.on_call_view(console, world, incidents)

    console.print(
        f"\n[bold]Production monitoring: PR #{first}'s model, watched window by window[/]"
    )
    drift_alerted = demo_monitoring.drift_act(console, world, gateway, pagerduty, out_dir)

    merged = world.sandbox.pull(REGISTRY, first).merged
    blocked = not world.sandbox.pull(REGISTRY, second).merged
    ok = (
        merged
        and blocked
        and promoted.conclusion == "success"
        and rolled_back.conclusion == "failure"
        and len(incidents) == 1
        and drift_alerted
    )
    mark = "✅" if ok else "❌"
    console.print(
        f"[bold]{mark} PR #{first} merged by the bot and promoted in production: "
        f"{merged and promoted.conclusion == 'success'}; PR #{second} blocked and not "
        f"merged: {blocked}; PR #{third} rolled back in production and on-call paged once: "
        f"{rolled_back.conclusion == 'failure' and len(incidents) == 1}; drift on PR "
        f"#{first}'s model reached the team and on-call once per check: {drift_alerted}[/]"
    )
    return 0 if ok else 1
