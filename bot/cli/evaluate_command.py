"""`shipyard evaluate`: the bot's evaluation on a laptop or in CI, with documented exit codes.

Exit codes: 0 eligible for auto-promotion; 0 needs review (1 with `--strict`); 1 fails the gate;
2 could not evaluate (bad input, unreadable file, evaluation error). The report goes to stdout
or files; one summary line goes to stdout; everything else (progress, tables, errors) to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.report_format import ReportFormat
from evaluators.artifacts.model_worker import (
    BASELINE,
    CANDIDATE,
    LATENCY_ROWS,
    ModelWorker,
    models_of,
)
from evaluators.policy import Policy, PolicyError, parse_policy
from evaluators.report import Decision, EvaluationReport, RunStatus

if TYPE_CHECKING:
    from evaluators.candidate import ModelConfig
    from evaluators.statistics.compare import Comparison

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_ERROR = 2

STEPS = (
    "loading benchmark",
    "scoring candidate",
    "scoring production",
    "comparing",
    "measuring latency",
)


def _import_plots() -> None:
    import evaluators.rendering.plots  # noqa: F401


class _EarlyFigures:
    """The HTML report's comparison figures, drawn in a thread while latency is measured."""

    def __init__(self) -> None:
        self._figures: dict[str, str | None] = {}
        self._thread: threading.Thread | None = None

    def start(self, comparison: Comparison, *, primary_metric: str) -> None:
        self._thread = threading.Thread(
            target=self._draw, args=(comparison, primary_metric), daemon=True
        )
        self._thread.start()

    def _draw(self, comparison: Comparison, primary_metric: str) -> None:
        from evaluators.rendering.plots import comparison_plots
        from evaluators.rendering.render import order_segments

        rows = order_segments(comparison.segments, primary_metric=primary_metric)
        try:
            self._figures = comparison_plots(
                calibration=comparison.calibration,
                rows=[(row.segment, row.shown) for row in rows],
                confidence=comparison.statistics.confidence if comparison.statistics else None,
            )
        except Exception:
            self._figures = {}  # the renderer draws them again and reports what fails

    def drawn(self) -> dict[str, str | None]:
        """The figures (empty when none were drawn: the renderer then draws them)."""
        if self._thread is not None:
            self._thread.join()
        return self._figures


def _render(
    fmt: ReportFormat, report: EvaluationReport, figures: _EarlyFigures | None = None
) -> str:
    # Imported when needed: the renderers are not needed until the evaluation has finished.
    from evaluators.rendering.render import render_html, render_json, render_pr_comment

    renderers: dict[ReportFormat, Callable[[EvaluationReport], str]] = {
        ReportFormat.JSON: render_json,
        ReportFormat.MARKDOWN: lambda report: render_pr_comment(report, in_pull_request=False),
        ReportFormat.HTML: lambda report: render_html(
            report, in_pull_request=False, drawn=figures.drawn() if figures else None
        ),
    }
    return renderers[fmt](report)


def _score_early(
    worker: ModelWorker,
    models: Mapping[str, tuple[Path, ModelConfig]],
    policy: Policy,
    base_dir: Path,
) -> None:
    """Start scoring (and timing) before this process imports pandas and the statistics."""
    from evaluators.artifacts.early_features import early_features

    if policy.benchmark is None or policy.statistics.engine != "local":
        return
    found = early_features(
        policy.benchmark,
        base_dir=base_dir,
        features={role: config.features for role, (_, config) in models.items()},
    )
    if not found:
        return
    for role, x in found.items():
        worker.send_features(role, x)
        worker.start_predict(role)
    rows = min(len(x) for x in found.values())
    if policy.latency.enabled and set(found) == {CANDIDATE, BASELINE} and rows > 0:
        # The command the evaluation sends (so it is not sent twice). After the scores: the
        # worker answers them sooner, and times latency while this process computes.
        worker.start_latency(
            rows=min(LATENCY_ROWS, rows),
            policy=policy.latency,
            confidence=policy.statistics.confidence,
        )


class InputError(Exception):
    """The command cannot run with these inputs; the message tells the user what to fix."""


@dataclass(frozen=True)
class EvaluateRequest:
    """Everything `shipyard evaluate` was asked to do."""

    candidate: Path
    baseline: Path | None
    policy_path: Path
    benchmark: str | None = None
    no_baseline: bool = False
    strict: bool = False
    report_format: ReportFormat | None = None
    output: Path | None = None
    files: dict[ReportFormat, Path] = field(default_factory=dict)
    dask_scheduler: str | None = None  # the operator's, for statistics.engine: dask


def exit_code(report: EvaluationReport, *, strict: bool) -> int:
    """The documented exit code for a finished evaluation."""
    if report.status is not RunStatus.COMPLETED or report.verdict is None:
        return EXIT_ERROR
    decision = report.verdict.decision
    if decision is Decision.FAIL:
        return EXIT_FAIL
    if decision is Decision.NEEDS_REVIEW and strict:
        return EXIT_FAIL
    return EXIT_OK


def _check_model_dir(path: Path, role: str) -> None:
    if not path.exists():
        raise InputError(f"the {role} directory {path} does not exist")
    if not path.is_dir():
        raise InputError(f"the {role} path {path} is not a directory")
    if not (path / "config.yaml").is_file():
        raise InputError(f"the {role} directory {path} has no config.yaml")


def _check_writable(path: Path, option: str) -> None:
    """Refuse an output path before spending minutes on the evaluation."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"{option} {path} is a directory, not a file")
    if not parent.is_dir():
        raise InputError(f"{option} {path}: the directory {parent} does not exist")
    writable = os.access(path, os.W_OK) if path.exists() else os.access(parent, os.W_OK)
    if not writable:
        raise InputError(f"{option} {path} is not writable")


def _load_policy(request: EvaluateRequest) -> Policy:
    path = request.policy_path
    if not path.exists():
        raise InputError(f"the policy file {path} does not exist (pass --policy FILE)")
    if not path.is_file():
        raise InputError(f"the policy path {path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise InputError(f"the policy file {path} cannot be read as UTF-8 text") from None
    try:
        policy = parse_policy(text, source=str(path))
    except PolicyError as exc:
        raise InputError(str(exc)) from None
    if policy.benchmark is None:
        raise InputError(f"{path} names no benchmark: add benchmark.uri and benchmark.sha256")
    if request.benchmark is not None:
        policy = policy.model_copy(
            update={"benchmark": policy.benchmark.model_copy(update={"uri": request.benchmark})}
        )
    return policy


def validate_request(request: EvaluateRequest) -> Policy:
    """Every check that needs no evaluation, so bad input fails in a second with a clear message."""
    if request.baseline is None and not request.no_baseline:
        raise InputError(
            "pass --baseline DIR (the production model) or --no-baseline to compare with a "
            "class-prior baseline"
        )
    if request.baseline is not None and request.no_baseline:
        raise InputError("--baseline and --no-baseline cannot be used together")
    if request.output is not None and request.report_format is None:
        raise InputError("--output needs --format json|markdown|html")
    _check_model_dir(request.candidate, "candidate")
    if request.baseline is not None:
        _check_model_dir(request.baseline, "baseline")
    if request.output is not None:
        _check_writable(request.output, "--output")
    for fmt, path in request.files.items():
        _check_writable(path, f"--{'json' if fmt is ReportFormat.JSON else fmt.value}")
    return _load_policy(request)


def summary_line(report: EvaluationReport, *, code: int) -> str:
    """One line a CI log shows: the decision, the headline and the exit code."""
    from evaluators.rendering.render import DECISION_TITLES, headline

    if report.status is not RunStatus.COMPLETED or report.verdict is None:
        why = report.error or "no verdict"
        return f"error: {report.model}: could not evaluate: {why} (exit {code})"
    title = DECISION_TITLES[report.verdict.decision]
    label = report.baseline_label
    compared = f" Compared with a {label}." if label != "production" else ""
    return f"{title}: {headline(report, markdown=False)}{compared} (exit {code})"


def run_evaluate_command(
    request: EvaluateRequest,
    *,
    console: Console | None = None,
    stdout: TextIO | None = None,
    worker: ModelWorker | None = None,
    template_cache: Path | None = None,
) -> int:
    """Validate, evaluate, write the reports; returns the exit code. `template_cache` keeps
    the compiled report templates for the next run (the command line's cache directory)."""
    # soft_wrap: a CI log keeps each message on one line, however narrow the "terminal".
    console = console or Console(stderr=True, soft_wrap=True)
    out = stdout or sys.stdout
    # Started as early as possible (the command line starts it before importing this module):
    # it verifies and loads the models while this process imports pandas and reads the
    # benchmark.
    worker = worker or ModelWorker()
    try:
        return _evaluate(request, console, out, worker, template_cache)
    finally:
        worker.close()


def _evaluate(
    request: EvaluateRequest,
    console: Console,
    out: TextIO,
    worker: ModelWorker,
    template_cache: Path | None,
) -> int:
    try:
        policy = validate_request(request)
    except InputError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_ERROR
    models = models_of(request.candidate, request.baseline)
    base_dir = request.policy_path.resolve().parent if request.benchmark is None else Path.cwd()
    if models is not None:
        worker.load(
            models, memory_mb=policy.limits.memory_mb, timeout_s=policy.limits.timeout_seconds
        )
        _score_early(worker, models, policy, base_dir)
    wants_html = ReportFormat.HTML in request.files or request.report_format is ReportFormat.HTML
    from evaluators.evaluate import run_evaluation

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
            if name == "scoring candidate" and wants_html:
                # The features are read: import matplotlib for the figures meanwhile.
                threading.Thread(target=_import_plots, daemon=True).start()

        figures = _EarlyFigures() if wants_html else None

        def compared(comparison: Comparison) -> None:
            if figures is not None:
                figures.start(comparison, primary_metric=policy.primary_metric)

        try:
            report = run_evaluation(
                candidate_dir=request.candidate,
                baseline_dir=request.baseline,
                policy=policy,
                benchmark_base_dir=base_dir,
                progress=step,
                parallel_inference=True,  # one evaluation at a time: use both cores
                worker=worker,
                on_compared=compared,
                dask_scheduler=request.dask_scheduler,
            )
        except Exception as exc:  # a bug, not bad input: say what, without a traceback
            console.print(f"[red]error:[/] the evaluation crashed: {escape(repr(exc))[:500]}")
            return EXIT_ERROR
    code = exit_code(report, strict=request.strict)
    _print_details(console, report)
    if template_cache is not None:
        from report_templates import cache_compiled_templates

        cache_compiled_templates(template_cache)
    try:
        for fmt, path in request.files.items():
            path.write_text(_render(fmt, report, figures), encoding="utf-8")
        if request.report_format is not None and request.output is not None:
            text = _render(request.report_format, report, figures)
            request.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        console.print(f"[red]error:[/] could not write {escape(str(exc.filename))}")
        return EXIT_ERROR
    line = summary_line(report, code=code)
    if request.report_format is not None and request.output is None:
        out.write(_render(request.report_format, report, figures))
        console.print(line, highlight=False, markup=False)  # stdout carries the report
    else:
        out.write(line + "\n")
    out.flush()
    return code


def _print_details(console: Console, report: EvaluationReport) -> None:
    """The human view on stderr: the overall table and the verdict's reasons."""
    from evaluators.rendering.render import DECISION_TITLES

    if report.status is not RunStatus.COMPLETED:
        return  # the summary line says why
    table = Table(title=f"{report.model}: candidate vs {report.baseline_label}")
    baseline = "production" if report.baseline_label == "production" else "baseline"
    for column in ("metric", "candidate", baseline, "Δ", "interval", "outcome"):
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
    verdict = report.verdict
    if verdict is not None:
        colour = {"auto_promote_eligible": "green", "needs_review": "yellow"}.get(
            verdict.decision.value, "red"
        )
        console.print(f"[bold {colour}]{DECISION_TITLES[verdict.decision]}[/]")
        for reason in verdict.reasons:
            console.print(f"  • {escape(reason)}", highlight=False)
