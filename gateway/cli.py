"""`shipyard-gateway`: publish bundles, set routes, serve, and replay traffic."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from gateway.routing import CanarySlot, Deployed, ModelRoute, ShadowSlot, load_routing, save_routing
from gateway.store import ArtifactStore, StoreError

app = typer.Typer(help="Shipyard's model gateway.", no_args_is_help=True, add_completion=False)

StoreOption = Annotated[str, typer.Option("--store", help="Artifact store (fsspec URL or dir).")]
RoutingOption = Annotated[Path, typer.Option("--routing", help="Routing table file (JSON).")]


def _fail(text: str) -> typer.Exit:
    typer.echo(text, err=True)
    return typer.Exit(1)


@app.command()
def publish(
    model_dir: Annotated[Path, typer.Argument(help="A registry model directory.")],
    store: StoreOption,
    model: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str, typer.Option(help="Version to publish it as.")],
) -> None:
    """Copy a model directory's bundle into the store; prints its sha256."""
    try:
        sha = ArtifactStore(store).publish(model_dir, model=model, version=version)
    except StoreError as exc:
        raise _fail(f"not published: {exc}") from None
    typer.echo(sha)


def _deployed(store: ArtifactStore, model: str, version: str) -> tuple[str, str]:
    try:
        sha = store.recorded_sha256(model, version)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    if sha is None:
        raise _fail(f"{model} {version} is not published in the store")
    return version, sha


@app.command()
def route(
    model: Annotated[str, typer.Argument(help="Model name.")],
    production: Annotated[str, typer.Option(help="Production version.")],
    routing: RoutingOption,
    store: StoreOption,
    shadow: Annotated[str | None, typer.Option(help="Shadow version.")] = None,
    mirror_share: Annotated[float, typer.Option(help="Share mirrored to the shadow.")] = 1.0,
    canary: Annotated[str | None, typer.Option(help="Canary version.")] = None,
    weight: Annotated[float, typer.Option(help="Share answered by the canary.")] = 0.0,
) -> None:
    """Set one model's routes (digests from the store); raises the table's revision."""
    artifacts = ArtifactStore(store)
    try:
        prod_v, prod_sha = _deployed(artifacts, model, production)
        entry = ModelRoute(
            production=Deployed(version=prod_v, sha256=prod_sha),
            shadow=None
            if shadow is None
            else ShadowSlot(
                version=shadow,
                sha256=_deployed(artifacts, model, shadow)[1],
                mirror_share=mirror_share,
            ),
            canary=None
            if canary is None
            else CanarySlot(
                version=canary, sha256=_deployed(artifacts, model, canary)[1], weight=weight
            ),
        )
        table = load_routing(routing)
        models = {**table.models, model: entry}
        updated = table.model_copy(update={"revision": table.revision + 1, "models": models})
        updated = type(table).model_validate(updated.model_dump())
    except ValidationError as exc:
        raise _fail(f"invalid route: {exc.errors()[0]['msg']}") from None
    save_routing(routing, updated)
    typer.echo(
        f"routing revision {updated.revision}: {model} production {production}"
        + (f", shadow {shadow} ({mirror_share:g})" if shadow else "")
        + (f", canary {canary} ({weight:g})" if canary else "")
    )


@app.command()
def serve(
    store: StoreOption,
    routing: RoutingOption,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8080,
    log_share: Annotated[float, typer.Option(help="Share of requests logged.")] = 1.0,
    mirror_queue: Annotated[int, typer.Option(help="Mirror queue bound.")] = 1024,
    mirror_workers: Annotated[int, typer.Option(help="Shadow worker threads.")] = 1,
    mirror_mode: Annotated[
        str, typer.Option(help="Where the shadow scores: process (default) or thread.")
    ] = "process",
    shadow_niceness: Annotated[
        int, typer.Option(help="Added to the shadow worker process's nice value (0-19).")
    ] = 5,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1024 * 1024,
    max_rows: Annotated[int, typer.Option(help="Most rows in one request.")] = 1024,
    reload_every: Annotated[float, typer.Option(help="Seconds between routing polls.")] = 0.5,
    cache_dir: Annotated[Path | None, typer.Option(help="Local bundle cache.")] = None,
    behind_router: Annotated[
        bool,
        typer.Option(
            help="Behind nginx (Shipyard's nginx router): answer from the slot its "
            "X-Shipyard-Variant header names, never split or mirror here."
        ),
    ] = False,
    router_token_file: Annotated[
        Path | None,
        typer.Option(help="The token the router sends (required with --behind-router)."),
    ] = None,
    log_flush_every: Annotated[
        float, typer.Option(help="Seconds between prediction log writes.")
    ] = 5.0,
    clock_file: Annotated[
        Path | None,
        typer.Option(
            help="For demos and tests that move time by hand: the prediction log's time is "
            "read from this file (ISO 8601, written by another process), not the system clock."
        ),
    ] = None,
) -> None:
    """Serve the routed models over the Open Inference Protocol v2 (one process)."""
    import uvicorn

    from gateway.app import create_app
    from gateway.clock import Clock, FileClock, SystemClock
    from gateway.config import MIRROR_MODES, GatewayConfig

    mode = next((m for m in MIRROR_MODES if m == mirror_mode), None)
    if mode is None:
        raise _fail("mirror mode must be process or thread")
    if not 0 <= shadow_niceness <= 19:
        raise _fail("shadow niceness must be between 0 and 19")
    if not 0 < log_flush_every <= 3600:
        raise _fail("the prediction log's flush interval must be between 0 and 3600 seconds")
    clock: Clock = SystemClock()
    if clock_file is not None:
        clock = FileClock(clock_file)
        try:
            clock.now()
        except (OSError, ValueError) as exc:
            raise _fail(f"the clock file cannot be read: {exc}") from None
    token = None
    if behind_router:
        from gateway.router_token import read_router_token

        if router_token_file is None:
            raise _fail("--behind-router needs --router-token-file (the token nginx sends)")
        try:
            token = read_router_token(router_token_file)
        except (OSError, ValueError) as exc:
            raise _fail(f"the router token cannot be read: {exc}") from None
    config = GatewayConfig(
        store_url=store,
        routing_path=routing,
        log_share=log_share,
        mirror_queue=mirror_queue,
        mirror_workers=mirror_workers,
        mirror_mode=mode,
        shadow_niceness=shadow_niceness,
        max_body_bytes=max_body_bytes,
        max_rows=max_rows,
        reload_every_s=reload_every,
        cache_dir=cache_dir,
        behind_router=behind_router,
        router_token=token,
        log_flush_s=log_flush_every,
        clock=clock,
    )
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False)


@app.command()
def traffic(
    dataset: Annotated[Path, typer.Argument(help="Parquet or CSV file of feature rows.")],
    url: Annotated[str, typer.Option(help="Gateway base URL.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    rate: Annotated[float, typer.Option(help="Requests per second.")] = 50.0,
    duration: Annotated[float | None, typer.Option(help="Seconds to run.")] = None,
    rows: Annotated[int | None, typer.Option(help="Requests to send.")] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at most.")] = 8,
    features: Annotated[str | None, typer.Option(help="Comma-separated columns.")] = None,
) -> None:
    """Replay dataset rows against a gateway; prints achieved rate, latency and errors."""
    from gateway.traffic import model_features, read_rows, replay

    if rate <= 0 or concurrency < 1:
        raise _fail("rate must be positive and concurrency at least 1")
    count = rows if rows is not None else int(rate * (duration if duration is not None else 10))
    if count < 1:
        raise _fail("nothing to send")
    try:
        wanted = features.split(",") if features else model_features(url, model)
        names, matrix = read_rows(dataset, wanted)
    except (ValueError, OSError) as exc:
        raise _fail(f"cannot start: {exc}") from None
    result = asyncio.run(
        replay(
            url,
            model=model,
            features=names,
            rows=matrix,
            rate=rate,
            count=count,
            concurrency=concurrency,
        )
    )
    typer.echo(result.summary())
    if result.errors:
        counts = sorted(result.statuses.items())
        typer.echo("statuses: " + ", ".join(f"{k}: {v}" for k, v in counts))


if __name__ == "__main__":
    app()
