"""`shipyard evaluate`: the bot's evaluation on a laptop, with a progress bar and an exit status."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from evaluators.evaluate import run_evaluation
from evaluators.policy import PolicyError, parse_policy
from evaluators.render import render_html, render_json, render_pr_comment
from evaluators.report import Decision, EvaluationReport

STEPS = (
    "loading benchmark",
    "scoring candidate",
    "scoring production",
    "comparing",
    "measuring latency",
)


def run_evaluate_command(
    *,
    candidate: Path,
    baseline: Path | None,
    policy_path: Path,
    benchmark: str | None,
    html: Path | None,
    json_out: Path | None,
    markdown: Path | None,
    console: Console | None = None,
) -> int:
    """0 when eligible or needing review, 1 on a fail (or an evaluation that could not run)."""
    console = console or Console(stderr=True)
    try:
        policy = parse_policy(policy_path.read_text() if policy_path.is_file() else None)
    except PolicyError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    base_dir = policy_path.resolve().parent
    if benchmark is not None:
        if policy.benchmark is None:
            console.print("[red].shipyard.yml has no benchmark section to pin --benchmark[/]")
            return 2
        policy = policy.model_copy(
            update={"benchmark": policy.benchmark.model_copy(update={"uri": benchmark})}
        )
        base_dir = Path.cwd()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=len(STEPS))

        def step(name: str) -> None:
            progress.update(task, description=name, advance=1)

        report = run_evaluation(
            candidate_dir=candidate,
            baseline_dir=baseline,
            policy=policy,
            benchmark_base_dir=base_dir,
            progress=step,
        )
    _print_summary(console, report)
    if html:
        html.write_text(render_html(report))
    if json_out:
        json_out.write_text(render_json(report))
    if markdown:
        markdown.write_text(render_pr_comment(report))
    decision = report.verdict.decision if report.verdict else Decision.FAIL
    return 1 if decision is Decision.FAIL else 0


def _print_summary(console: Console, report: EvaluationReport) -> None:
    verdict = report.verdict
    if report.error:
        console.print(f"[red]{report.status.value}: {report.error}[/]")
    table = Table(title=f"{report.model}: candidate vs production")
    for column in ("metric", "candidate", "production", "Δ", "interval", "outcome"):
        table.add_column(column)
    for m in report.overall:
        table.add_row(
            m.metric,
            f"{m.candidate:.4f}",
            f"{m.baseline:.4f}",
            f"{m.delta:+.4f}",
            f"{m.ci_low:+.4f} to {m.ci_high:+.4f}",
            m.outcome.value,
        )
    console.print(table)
    if verdict is not None:
        colour = {"auto_promote_eligible": "green", "needs_review": "yellow"}.get(
            verdict.decision.value, "red"
        )
        console.print(f"[bold {colour}]{verdict.decision.value}[/]")
        for reason in verdict.reasons:
            console.print(f"  • {reason}")
