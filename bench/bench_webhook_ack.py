"""Webhook acknowledgement latency: the real bot vs a bare FastAPI endpoint that only checks HMAC.

Both run as separate uvicorn processes on loopback; one client sends N signed deliveries
to each (sequentially, keep-alive) and records the time to the 2xx. The bot stores every
delivery in its inbox (SQLite, WAL) before answering, so the gap is the cost of durability.

    python bench/bench_webhook_ack.py [--n 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SECRET = "bench-webhook-secret-0123456789"


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/github/webhooks")
    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        given = request.headers.get("x-hub-signature-256", "")
        want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, want):
            return JSONResponse({"message": "bad signature"}, status_code=401)
        return JSONResponse({"message": "accepted"}, status_code=202)

    return app


def bot_app():  # type: ignore[no-untyped-def]
    from bot.base.settings import load_settings
    from bot.service.app import create_app

    return create_app(load_settings())


def serve(kind: str, port: int) -> None:
    import uvicorn

    app = bare_app() if kind == "bare" else bot_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _start(kind: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)], env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def _measure(port: int, n: int, payload: bytes) -> list[float]:
    signature = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    out = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(n + 50):
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": signature,
            }
            start = time.perf_counter()
            response = client.post("/github/webhooks", content=payload, headers=headers)
            elapsed = time.perf_counter() - start
            assert response.status_code == 202, response.text
            if i >= 50:  # warm-up excluded
                out.append(elapsed * 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bot.base.local_server import free_port

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    examples = Path(__file__).parents[1] / "fixtures/github/webhooks-examples.json.gz"
    import gzip

    entries = json.loads(gzip.decompress(examples.read_bytes()))
    payload = json.dumps(
        next(e for e in entries if e["name"] == "pull_request")["examples"][0]
    ).encode()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env.update(
            {
                "SHIPYARD_GITHUB_APP_ID": "1",
                "SHIPYARD_GITHUB_PRIVATE_KEY": pem,
                "SHIPYARD_GITHUB_WEBHOOK_SECRET": SECRET,
                "SHIPYARD_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                "SHIPYARD_GITHUB_API_URL": "http://127.0.0.1:9",
            }
        )
        for kind in ("bare", "bot"):
            port = free_port()
            proc = _start(kind, port, env)
            try:
                results[kind] = _measure(port, args.n, payload)
            finally:
                proc.terminate()
                proc.wait(10)
    print(f"{args.n} signed deliveries each ({len(payload):,}-byte pull_request payload), loopback")
    for kind, values in results.items():
        print(
            f"  {kind:4s}: p50 {_pct(values, 50):6.2f} ms   p99 {_pct(values, 99):6.2f} ms   "
            f"max {max(values):6.2f} ms"
        )
    b, s = results["bot"], results["bare"]
    print(
        f"  ratio bot/bare: p50 {_pct(b, 50) / _pct(s, 50):.2f}x   "
        f"p99 {_pct(b, 99) / _pct(s, 99):.2f}x"
    )


if __name__ == "__main__":
    main()
