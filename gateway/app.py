"""The gateway's HTTP face: Open Inference Protocol v2 (as KServe, Triton and MLServer speak it)
plus /metrics. Errors are `{"error": "<short fixed text>"}`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from numpy.typing import NDArray
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from evaluators.candidate import ArtifactFormat, InputKind
from gateway import choice, protocol, router_token
from gateway.config import GatewayConfig
from gateway.live import ActiveRoute
from gateway.mirror import DROP_NOT_LOADED
from gateway.models import LoadedModel
from gateway.routing import NAME_PATTERN
from gateway.serving import Gateway, ModelFailed

SERVER_NAME = "shipyard-gateway"
INLINE_ROWS = 16  # ONNX requests up to this many rows run on the event loop
OUTPUT_NAME = "score"
_NAME = re.compile(NAME_PATTERN)

UNKNOWN_MODEL = "unknown model"
NOT_READY = "model is not ready"
TOO_LARGE = "request body is too large"
NOT_FOUND = "not found"


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        _ENCODER.encode(body).encode(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _error(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return _json(status, {"error": text}, headers)


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it exceeds `limit` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _finite_or_null(scores: NDArray[np.float64]) -> list[float | None]:
    """JSON has no NaN: a non-finite score is sent as null (and logged as it was)."""
    values: list[float | None] = scores.tolist()
    if not np.isfinite(scores).all():
        values = [v if v is not None and math.isfinite(v) else None for v in values]
    return values


def tensor_name(loaded: LoadedModel) -> str:
    """The name the single [N, F] input tensor goes by (config.yaml's input name, or `input`)."""
    config = loaded.config
    if config.input.kind is InputKind.TENSOR and config.input.name:
        return config.input.name
    return "input"


def _metadata(name: str, active: ActiveRoute, loaded: LoadedModel) -> dict[str, Any]:
    platform = "onnxruntime" if loaded.config.format is ArtifactFormat.ONNX else "sklearn"
    versions = [active.route.production.version]
    if active.canary is not None:
        versions.append(active.canary.version)
    n = len(loaded.features)
    return {
        "name": name,
        "versions": versions,
        "platform": platform,
        "inputs": [{"name": tensor_name(loaded), "datatype": "FP32", "shape": [-1, n]}]
        + [{"name": feature, "datatype": "FP32", "shape": [-1, 1]} for feature in loaded.features],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP64", "shape": [-1]}],
    }


def create_app(config: GatewayConfig) -> FastAPI:
    gateway = Gateway(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        gateway.start()
        try:
            yield
        finally:
            gateway.stop()  # drains the mirror queue and flushes the prediction log

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        text = NOT_FOUND if exc.status_code == 404 else "request refused"
        return _error(exc.status_code, text)

    @app.get("/v2/health/live")
    async def live() -> Response:
        return _json(200, {"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        ok = gateway.started and gateway.watcher.table.ready
        return _json(200 if ok else 503, {"ready": ok})

    @app.get("/v2")
    async def server_metadata() -> Response:
        return _json(200, {"name": SERVER_NAME, "version": "0.1.0", "extensions": []})

    def known(name: str) -> ActiveRoute | None:
        return gateway.route(name) if _NAME.match(name) else None

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        active = known(name)
        if active is None:
            return _error(404, UNKNOWN_MODEL)
        return _json(200 if active.ready else 503, {"name": name, "ready": active.ready})

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def version_ready(name: str, version: str) -> Response:
        # A routing change is picked up once its models are loaded: until then this says 503.
        active = known(name)
        if active is None:
            return _error(404, UNKNOWN_MODEL)
        ok = active.serves(version)
        return _json(200 if ok else 503, {"name": name, "version": version, "ready": ok})

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        active = known(name)
        if active is None:
            return _error(404, UNKNOWN_MODEL)
        if active.production is None:
            return _error(503, NOT_READY)
        return _json(200, _metadata(name, active, active.production))

    async def infer(request: Request) -> Response:
        name = str(request.path_params["name"])
        request_id = choice.request_id(request.headers.get("x-request-id"))
        headers = {"x-request-id": request_id}
        active = known(name)
        if active is None:
            return _error(404, UNKNOWN_MODEL, headers)
        body = await _bounded_body(request, config.max_body_bytes)
        if body is None:
            return _error(413, TOO_LARGE, headers)
        if not active.ready:
            return _error(503, NOT_READY, headers)
        try:
            parsed = protocol.parse_request(body)
        except protocol.ProtocolError as exc:
            return _error(400, str(exc), headers)
        if "x-request-id" not in request.headers and parsed.id is not None:
            request_id = choice.request_id(parsed.id)
            headers["x-request-id"] = request_id
        routed = None
        token = config.router_token
        if token is not None and router_token.carries(
            request.headers.get(router_token.HEADER), token
        ):
            routed = request.headers.get("x-shipyard-variant")  # the router's, not a client's
        variant, loaded = gateway.answering(
            active, model=name, request_id=request_id, routed=routed
        )
        headers["x-shipyard-variant"] = variant
        if loaded is None:  # a mirror for a shadow this process does not hold: counted, refused
            gateway.mirror.drop(name, DROP_NOT_LOADED)
            return _error(503, NOT_READY, headers)
        headers["x-shipyard-version"] = loaded.version
        try:
            x = protocol.feature_matrix(
                parsed,
                features=loaded.features,
                tensor_names={tensor_name(loaded)},
                max_rows=config.max_rows,
            )
        except protocol.ProtocolError as exc:
            if str(exc) == protocol.TOO_MANY_ROWS:
                return _error(413, str(exc), headers)
            gateway.refused(name, variant, loaded.version)
            return _error(400, str(exc), headers)
        try:
            context = parsed.context(len(x))  # logged with the rows, never fed to the model
        except protocol.ProtocolError as exc:
            return _error(400, str(exc), headers)
        try:
            if loaded.config.format is ArtifactFormat.ONNX and len(x) <= INLINE_ROWS:
                # Microseconds of onnxruntime: a thread hop would cost more than the model.
                answer = gateway.answer(
                    name,
                    variant,
                    loaded,
                    request_id=request_id,
                    x=x,
                    active=active,
                    context=context,
                )
            else:
                # A batch or a skops model (tens of ms) must not stall the event loop.
                answer = await run_in_threadpool(
                    gateway.answer,
                    name,
                    variant,
                    loaded,
                    request_id=request_id,
                    x=x,
                    active=active,
                    context=context,
                )
        except ModelFailed as exc:
            return _error(500, str(exc), headers)
        output = {
            "name": OUTPUT_NAME,
            "datatype": "FP64",
            "shape": [len(answer.scores)],
            "data": _finite_or_null(answer.scores),
        }
        body_out = {
            "model_name": name,
            "model_version": answer.version,
            "id": request_id,
            "outputs": [output],
        }
        return _json(200, body_out, headers)

    # A plain Starlette route: the hot path skips FastAPI's per-request dependency solving.
    app.router.add_route("/v2/models/{name}/infer", infer, methods=["POST"])

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(gateway.render_metrics(), media_type=CONTENT_TYPE_LATEST)

    return app
