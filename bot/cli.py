"""`shipyard`: serve the bot, run the sandbox demo, evaluate a candidate on a laptop."""

from __future__ import annotations

import json
import logging
import sys

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
    from bot.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=True)


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
