"""`shipyard`: serve the bot, run the sandbox demo, evaluate a candidate on a laptop."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command()
def serve(
    host: str = typer.Option("0.0.0.0", help="Interface to listen on."),  # noqa: S104
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Run the bot: migrations at start, then the webhook endpoint and workers."""
    import uvicorn

    from bot.app import create_app
    from bot.observability import configure_logging
    from bot.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=True)


@app.command()
def demo(
    fixtures: Path = typer.Option(Path("fixtures"), help="The repository's fixtures directory."),
    out: Path = typer.Option(Path("shipyard-demo"), help="Where the demo writes its files."),
) -> None:
    """Run the whole story on embedded defaults: SQLite, the GitHub sandbox, the fixtures."""
    from bot.demo import run_demo

    if not (fixtures / "registry" / "shipyard.yml").is_file():
        typer.echo(f"{fixtures}/registry not found: run from the repository root", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_demo(fixtures=fixtures, out_dir=out))


@app.command()
def evaluate(
    candidate: Path = typer.Argument(..., help="The candidate model directory (models/<name>)."),
    baseline: Path | None = typer.Option(None, help="The production model directory."),
    policy: Path = typer.Option(Path(".shipyard.yml"), help="The promotion policy."),
    benchmark: str | None = typer.Option(
        None, help="Benchmark path or URI (overrides the policy's; the sha256 pin still applies)."
    ),
    html: Path | None = typer.Option(None, help="Write the HTML report here."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the JSON report here."),
    markdown: Path | None = typer.Option(None, help="Write the PR-comment Markdown here."),
) -> None:
    """Evaluate a candidate against production exactly as the bot does; exit 1 on a fail."""
    from bot.evaluate_command import run_evaluate_command

    raise typer.Exit(
        run_evaluate_command(
            candidate=candidate,
            baseline=baseline,
            policy_path=policy,
            benchmark=benchmark,
            html=html,
            json_out=json_out,
            markdown=markdown,
        )
    )


@app.command("policy-schema")
def policy_schema() -> None:
    """Print the JSON Schema of `.shipyard.yml` (for editors)."""
    from evaluators.policy import policy_json_schema

    json.dump(policy_json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
