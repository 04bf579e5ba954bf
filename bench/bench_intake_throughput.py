"""Intake throughput: durable acknowledgements per second, and deliveries handled per second.

In one run, on loopback, each server in its own uvicorn[standard] process (uvloop + httptools):
  * `bare`   — a FastAPI endpoint that only checks the HMAC and answers 202 (the ceiling);
  * `sqlite` — the real bot, inbox in SQLite (WAL);
  * `postgresql` — the real bot, inbox in a fresh schema on SHIPYARD_TEST_POSTGRES_URL.
wrk drives each with signed 22 KB `pull_request` deliveries (action `locked`: routed, validated
and handled, but no GitHub call) with a unique X-GitHub-Delivery per request. After wrk stops the
script waits for the inbox to drain and reports acks/s, latency p50/p99, handled/s, and
acknowledged deliveries that were not stored (lost).

    SHIPYARD_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python bench/bench_intake_throughput.py [--duration 20] [--connections 16]

Not part of the test suite. Needs `wrk` (apt-get install -y wrk).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SECRET = "bench-webhook-secret-0123456789"
ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ENV = "SHIPYARD_TEST_POSTGRES_URL"

# Each request gets a delivery id unique across threads and runs: "<run>-<thread>-<n>".
WRK_SCRIPT = r"""
local counter = 0
local threads = {}
local run = os.getenv("BENCH_RUN") or "run"
local signature = os.getenv("BENCH_SIGNATURE")
local f = io.open(os.getenv("BENCH_BODY"), "rb")
local payload = f:read("*a")
f:close()

-- setup runs in the main Lua state; `thread_id` becomes a global of each thread's own state.
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.body = payload
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "pull_request"
  wrk.headers["X-Hub-Signature-256"] = signature
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = run .. "-" .. thread_id .. "-" .. counter
  return wrk.format(nil, "/github/webhooks")
end

function done(summary, latency, requests)
  io.write(string.format(
    "BENCH {\"requests\": %d, \"duration_us\": %d, \"status_errors\": %d, " ..
    "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, \"timeouts\": %d, " ..
    "\"p50_us\": %d, \"p99_us\": %d, \"max_us\": %d}\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def bare_app() -> FastAPI:
    app = FastAPI()
    secret = SECRET.encode()

    @app.post("/github/webhooks")
    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        given = request.headers.get("x-hub-signature-256", "")
        want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, want):
            return JSONResponse({"message": "bad signature"}, status_code=401)
        return JSONResponse({"message": "accepted"}, status_code=202)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def serve(kind: str, port: int) -> None:
    import logging

    import uvicorn

    if kind == "bare":
        app = bare_app()
    else:
        from bot.base.settings import load_settings
        from bot.service.app import create_app

        logging.basicConfig(level=logging.WARNING)
        app = create_app(load_settings())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@dataclass
class Result:
    name: str
    acks_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    acked: int
    stored: int | None = None
    handled: int | None = None
    failed: int | None = None
    handled_per_s: float | None = None
    drain_s: float | None = None

    @property
    def lost(self) -> int | None:
        return None if self.stored is None else max(0, self.acked - self.stored)


def _start(kind: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)], env=env, cwd=ROOT
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)  # a start-up poll with a deadline
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def _wrk(port: int, *, args: argparse.Namespace, env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--timeout",
            "10s",
            "-s",
            env["BENCH_SCRIPT"],
            f"http://127.0.0.1:{port}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    return dict(json.loads(line.removeprefix("BENCH ")))


def _result(name: str, stats: dict[str, int]) -> Result:
    seconds = stats["duration_us"] / 1e6
    errors = sum(stats[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    acked = stats["requests"] - stats["status_errors"]
    return Result(
        name=name,
        acks_per_s=acked / seconds,
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        max_ms=stats["max_us"] / 1000,
        non_2xx=stats["status_errors"],
        socket_errors=errors,
        acked=acked,
    )


def _inbox(url: str, run: str) -> tuple[int, int, int, Any, Any, Any]:
    """(stored, done, failed, first received, last received, last processed) for this run."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT count(*), "
                    "sum(CASE WHEN status = 'done' THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), "
                    "min(received_at), max(received_at), max(processed_at) "
                    "FROM deliveries WHERE delivery_id LIKE :run"
                ),
                {"run": f"{run}-%"},
            ).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1] or 0), int(row[2] or 0), row[3], row[4], row[5]


def _as_time(value: Any) -> float:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def _measure_bot(
    name: str, url: str, *, args: argparse.Namespace, env: dict[str, str], port: int
) -> Result:
    run = uuid.uuid4().hex[:10]
    env = {**env, "SHIPYARD_DATABASE_URL": url, "BENCH_RUN": run}
    proc = _start("bot", port, env)
    try:
        result = _result(name, _wrk(port, args=args, env=env))
        # Handling continues after wrk stops: wait for the inbox to drain (or give up).
        wrk_ended = time.monotonic()
        deadline = wrk_ended + args.drain_timeout
        while True:
            stored, done, failed, first, last_in, last_done = _inbox(url, run)
            if done + failed >= stored or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # polling the database with a deadline
        result.stored, result.handled, result.failed = stored, done, failed
        if first is not None and last_done is not None:
            span = _as_time(last_done) - _as_time(first)
            result.handled_per_s = done / span if span > 0 else None
            result.drain_s = max(0.0, _as_time(last_done) - _as_time(last_in))
    finally:
        proc.terminate()
        proc.wait(30)
    return result


@contextmanager
def _postgres_schema(base: str) -> Iterator[str]:
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _payload() -> bytes:
    entries = json.loads(
        gzip.decompress((ROOT / "fixtures/github/webhooks-examples.json.gz").read_bytes())
    )
    example = next(e for e in entries if e["name"] == "pull_request")["examples"][0]
    # `locked` is routed and validated like any pull_request event, then needs no GitHub call.
    return json.dumps({**example, "action": "locked"}).encode()


def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _print(results: list[Result], args: argparse.Namespace, payload: bytes) -> None:
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"{len(payload):,}-byte signed pull_request deliveries, {os.cpu_count()} CPUs, loopback"
    )
    bare = next((r for r in results if r.name == "bare"), None)
    print(
        f"{'server':<11} {'acks/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'handled/s':>9} {'stored':>7} {'done':>7} {'failed':>6} {'lost':>5} "
        f"{'non2xx':>6} {'sockerr':>7} {'vs bare':>7}"
    )
    for r in results:
        ratio = f"{r.acks_per_s / bare.acks_per_s:.2f}" if bare and bare.acks_per_s else "-"
        handled = f"{r.handled_per_s:.0f}" if r.handled_per_s is not None else "-"
        print(
            f"{r.name:<11} {r.acks_per_s:8.0f} {r.p50_ms:7.1f} {r.p99_ms:7.1f} {r.max_ms:7.0f} "
            f"{handled:>9} {_n(r.stored):>7} {_n(r.handled):>7} {_n(r.failed):>6} "
            f"{_n(r.lost):>5} {r.non_2xx:6d} {r.socket_errors:7d} {ratio:>7}"
        )


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--drain-timeout", type=float, default=120)
    parser.add_argument(
        "--only", default="bare,sqlite,postgresql", help="comma-separated subset to run"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the project is run from its checkout, not installed
    if args.serve:
        serve(args.serve, args.port)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")

    from bot.base.local_server import free_port

    only = set(args.only.split(","))
    payload = _payload()
    signature = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(payload)
        script = Path(tmp) / "signed.lua"
        script.write_text(WRK_SCRIPT)
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "BENCH_BODY": str(body_file),
                "BENCH_SIGNATURE": signature,
                "BENCH_SCRIPT": str(script),
                "SHIPYARD_GITHUB_APP_ID": "1",
                "SHIPYARD_GITHUB_PRIVATE_KEY": _private_key(),
                "SHIPYARD_GITHUB_WEBHOOK_SECRET": SECRET,
                "SHIPYARD_GITHUB_API_URL": "http://127.0.0.1:9",  # never called
                "SHIPYARD_LOG_LEVEL": "WARNING",
            }
        )
        if "bare" in only:
            port = free_port()
            proc = _start("bare", port, {**env, "BENCH_RUN": "bare"})
            try:
                results.append(_result("bare", _wrk(port, args=args, env=env)))
            finally:
                proc.terminate()
                proc.wait(30)
        if "sqlite" in only:
            url = f"sqlite:///{tmp}/bench.db"
            results.append(_measure_bot("sqlite", url, args=args, env=env, port=free_port()))
        if "postgresql" in only:
            base = os.environ.get(POSTGRES_ENV)
            if base is None:
                print(f"postgresql skipped: {POSTGRES_ENV} is not set", file=sys.stderr)
            else:
                with _postgres_schema(base) as url:
                    results.append(
                        _measure_bot("postgresql", url, args=args, env=env, port=free_port())
                    )
    _print(results, args, payload)


if __name__ == "__main__":
    main()
