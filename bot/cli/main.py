"""`shipyard`: serve the bot, run the sandbox demo, evaluate a candidate on a laptop."""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot.cli.report_format import ReportFormat

if TYPE_CHECKING:
    from bot.base.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _version() -> str:
    try:
        return metadata.version("shipyard")
    except metadata.PackageNotFoundError:  # running from a checkout
        from evaluators import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"shipyard {_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """`shipyard`: serve the bot, run the sandbox demo, evaluate a candidate on a laptop."""


def public_url_problem(settings: Settings) -> str | None:
    """Why `serve` refuses to start without an explicit public URL (None when it is set)."""
    if "public_url" in settings.model_fields_set:
        return None
    return (
        "SHIPYARD_PUBLIC_URL is not set: reviewers follow report links to it, and the default "
        f"({settings.public_url}) only works on this machine. Set it to the URL people and "
        "GitHub reach the bot at, e.g. https://shipyard.example.com"
    )


@app.command()
def serve(
    host: str = typer.Option("0.0.0.0", help="Interface to listen on."),  # noqa: S104
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Run the bot: migrations at start, then the webhook endpoint and workers."""
    import uvicorn

    from bot.base.observability import configure_logging
    from bot.base.settings import SettingsError, load_settings
    from bot.service.app import create_app

    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    problem = public_url_problem(settings)
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=True)


@app.command()
def work(
    host: str = typer.Option("0.0.0.0", help="Interface for /healthz, /readyz, /metrics."),  # noqa: S104
    port: int = typer.Option(8001, help="Port for /healthz, /readyz and /metrics."),
) -> None:
    """Handle what intake stored, without serving webhooks: inbox, evaluations, deadlines.

    Run it beside `serve` processes started with SHIPYARD_RUN_WORKERS=false on the same
    PostgreSQL, so that acknowledging deliveries and handling them use different cores. It
    serves only /healthz, /readyz and /metrics.
    """
    import uvicorn

    from bot.base.observability import configure_logging
    from bot.base.settings import SettingsError, load_settings
    from bot.service.app import create_app

    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    problem = public_url_problem(settings)  # links in the comments it posts point there
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    app = create_app(settings, run_workers=True, intake=False)
    uvicorn.run(app, host=host, port=port)


@app.command()
def monitor(
    model: str = typer.Argument(..., help="The model's name (its directory in the registry)."),
    repository: str | None = typer.Option(None, help="owner/name of the registry, if several."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    database_url: str = typer.Option(
        ..., envvar="SHIPYARD_DATABASE_URL", help="The bot's store (SHIPYARD_DATABASE_URL)."
    ),
    public_url: str = typer.Option(
        "http://localhost:8000",
        envvar="SHIPYARD_PUBLIC_URL",
        help="Where the bot serves drift reports (SHIPYARD_PUBLIC_URL).",
    ),
) -> None:
    """Show how production monitoring sees MODEL: each check's alert and the last window."""
    from bot.cli.monitor_command import render_json, render_text
    from bot.monitoring.status import monitors_of_model
    from bot.store.db import open_store

    try:
        store = open_store(database_url)
        with store.session() as session:
            seen = monitors_of_model(session, model=model, repository=repository)
        store.engine.dispose()
    except Exception as exc:  # a driver's message may hold the URL's password
        typer.echo(f"error: the store could not be read ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from None
    typer.echo(render_json(seen) if as_json else render_text(seen, public_url=public_url))


@app.command("nginx-config")
def nginx_config(
    nginx_file: Path = typer.Argument(..., help="The nginx router file (SHIPYARD_*_NGINX)."),
    table: Path = typer.Option(
        ..., help="The routing table its gateways poll (SHIPYARD_*_ROUTING_TABLE)."
    ),
) -> None:
    """Write the nginx.conf to start nginx with (checked with `nginx -t`; the routes in effect,
    none at first), and print the command that starts it. The bot changes it from then on."""
    from bot.rollout.routers.factory import stage_router
    from bot.rollout.routers.nginx import NginxRouter
    from bot.rollout.routers.router import RouterError

    try:
        router = stage_router(table, nginx_file)
        assert isinstance(router, NginxRouter)
        written = router.install()
    except RouterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {written}")
    typer.echo(f"start nginx with: nginx -p {router.directory} -c {written}")


@app.command()
def migrate(
    database_url: str = typer.Option(
        ..., envvar="SHIPYARD_DATABASE_URL", help="The store (SHIPYARD_DATABASE_URL)."
    ),
) -> None:
    """Bring the database schema to the newest revision, then exit (run once before upgrading).

    `serve` migrates at start too; with several replicas, run this once first so they do not
    race to apply the same migration.
    """
    from bot.store.db import open_store

    try:
        store = open_store(database_url)
    except Exception as exc:  # the message of a driver error may hold the URL's password
        typer.echo(f"error: migration failed ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from None
    store.engine.dispose()
    typer.echo("database schema is up to date")


@app.command()
def demo(
    fixtures: Path | None = typer.Option(
        None, help="Fixtures directory (default: the ones shipped with Shipyard)."
    ),
    out: Path = typer.Option(Path("shipyard-demo"), help="Where the demo writes its files."),
    port: int | None = typer.Option(None, help="The bot's port (default: any free port)."),
    sandbox_port: int | None = typer.Option(
        None, help="The GitHub sandbox's port (default: any free port)."
    ),
) -> None:
    """Run the whole story on embedded defaults: SQLite, the GitHub sandbox, the fixtures."""
    from bot.cli.demo import run_demo
    from bot.demo_fixtures import demo_fixtures_dir

    global _exit_fast
    _exit_fast = True
    fixtures = fixtures or demo_fixtures_dir()
    if not (fixtures / "registry" / "shipyard.yml").is_file():
        typer.echo(f"error: {fixtures}/registry/shipyard.yml not found", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_demo(fixtures=fixtures, out_dir=out, port=port, sandbox_port=sandbox_port))


@app.command(
    epilog="Exit codes: 0 eligible for auto-promotion; 0 needs review (1 with --strict); "
    "1 fails the gate; 2 could not evaluate."
)
def evaluate(
    candidate: Path = typer.Argument(..., help="The candidate model directory (models/<name>)."),
    baseline: Path | None = typer.Option(None, help="The production model directory."),
    no_baseline: bool = typer.Option(
        False,
        "--no-baseline",
        help="No production model yet: compare with a class-prior baseline.",
    ),
    policy: Path = typer.Option(Path(".shipyard.yml"), help="The promotion policy file."),
    benchmark: str | None = typer.Option(
        None, help="Benchmark path or URI (overrides the policy's; the sha256 pin still applies)."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Exit 1 when the verdict is 'needs review'."
    ),
    report_format: ReportFormat | None = typer.Option(
        None, "--format", help="Write the report in this format to stdout (or to --output)."
    ),
    output: Path | None = typer.Option(None, help="Write the --format report to this file."),
    html: Path | None = typer.Option(None, help="Also write the HTML report here."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the JSON report here."),
    markdown: Path | None = typer.Option(None, help="Also write the Markdown report here."),
    dask_scheduler: str | None = typer.Option(
        None,
        envvar="SHIPYARD_DASK_SCHEDULER",
        help="Dask scheduler (tcp://host:port) for a policy with statistics.engine: dask.",
    ),
) -> None:
    """Evaluate a candidate against production exactly as the bot does."""
    from evaluators.artifacts.model_worker import ModelWorker
    from evaluators.artifacts.verdict_cache import default_cache_dir

    # Before any other import: the model worker's Python start and its own imports (onnx is
    # 0.6 s of CPU) then overlap this process's; it waits for the models on its stdin. The
    # verdict cache lets a repeat run skip verifying (and importing onnx) for the same bytes.
    worker = ModelWorker(verdict_cache=default_cache_dir())
    from bot.cli.evaluate_command import EvaluateRequest, run_evaluate_command

    files = {
        fmt: path
        for fmt, path in (
            (ReportFormat.HTML, html),
            (ReportFormat.JSON, json_out),
            (ReportFormat.MARKDOWN, markdown),
        )
        if path is not None
    }
    global _exit_fast
    _exit_fast = True
    request = EvaluateRequest(
        candidate=candidate,
        baseline=baseline,
        policy_path=policy,
        benchmark=benchmark,
        no_baseline=no_baseline,
        strict=strict,
        report_format=report_format,
        output=output,
        files=files,
        dask_scheduler=dask_scheduler,
    )
    cache = default_cache_dir().parent  # $XDG_CACHE_HOME/shipyard
    raise typer.Exit(
        run_evaluate_command(request, worker=worker, template_cache=cache / "templates")
    )


@app.command()
def check(
    paths: list[Path] = typer.Argument(
        ..., help="Model directories, or files inside them (as pre-commit passes them)."
    ),
    models_root: str = typer.Option("models", help="The registry's models directory."),
) -> None:
    """Run the pull request's candidate check on local model directories; exit 1 on a problem."""
    from bot.cli.local_check import check_model_dir, model_dirs_for
    from bot.promotion.registration_gate import Conclusion

    failed = False
    for directory in model_dirs_for(paths, models_root=models_root):
        result = check_model_dir(directory)
        ok = result.conclusion is Conclusion.SUCCESS
        failed = failed or not ok
        typer.echo(f"{'ok' if ok else 'FAIL'}  {directory}: {result.title}")
        for problem in result.problems:
            typer.echo(f"  - {problem}")
        for note in result.notes:
            typer.echo(f"    {note}")
    raise typer.Exit(1 if failed else 0)


@app.command("init-model")
def init_model(
    name: str = typer.Argument(..., help="The model's name (its directory name)."),
    models_root: Path = typer.Option(Path("models"), help="Where model directories live."),
    features: str = typer.Option(
        "feature_1,feature_2", help="Comma-separated feature names, in input order."
    ),
) -> None:
    """Create models/NAME with every file the candidate check wants, ready to fill in."""
    import re

    from bot.cli.local_check import check_model_dir, init_model_dir

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        typer.echo(f"error: {name!r} is not a usable directory name", err=True)
        raise typer.Exit(2)
    directory = models_root / name
    try:
        written = init_model_dir(directory, features=[f.strip() for f in features.split(",")])
    except (FileExistsError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(f"created {path}")
    result = check_model_dir(directory)
    typer.echo(f"shipyard check {directory}: {result.title}")
    raise typer.Exit(0 if not result.problems else 1)


@app.command("config-schema")
def config_schema() -> None:
    """Print the JSON Schema of a model's `config.yaml` (for editors)."""
    from bot.cli.local_check import config_json_schema

    json.dump(config_json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")


@app.command("policy-schema")
def policy_schema() -> None:
    """Print the JSON Schema of `.shipyard.yml` (for editors)."""
    from evaluators.policy import policy_json_schema

    json.dump(policy_json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")


_exit_fast = False  # set by commands whose process has nothing left to tear down


def main() -> None:
    try:
        app()
    except SystemExit as exc:
        if not _exit_fast:
            raise
        # `evaluate` and `demo` have written and flushed everything, closed their worker and
        # stopped their servers: skip tearing down pandas, pyarrow, scipy, matplotlib module
        # by module (0.2-0.5 s of every run).
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()


@app.command("demo-shadow")
def demo_shadow(
    fixtures: Path | None = typer.Option(
        None, help="Fixtures directory (default: the ones shipped with Shipyard)."
    ),
    out: Path = typer.Option(Path("shipyard-demo"), help="Where the demo writes its files."),
) -> None:
    """Shadow traffic on a real staging gateway: one candidate passes, one is caught."""
    from bot.cli.demo_shadow import run_shadow_demo
    from bot.demo_fixtures import demo_fixtures_dir

    fixtures = fixtures or demo_fixtures_dir()
    if not (fixtures / "registry" / "shipyard.yml").is_file():
        typer.echo(f"error: {fixtures}/registry/shipyard.yml not found", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_shadow_demo(fixtures=fixtures, out_dir=out))
