"""Intake throughput: durable acknowledgements per second, and deliveries handled per second.

In one run, on loopback, each server in its own uvicorn[standard] process (uvloop + httptools):
  * `bare`   — a FastAPI endpoint that only checks the HMAC and answers 202 (the ceiling);
  * `sqlite` — the real bot, inbox in SQLite (WAL);
  * `postgresql` — the real bot, inbox in a fresh schema on SHIPYARD_TEST_POSTGRES_URL;
  * `pg-split` — the same database, but two processes: an intake-only `serve`
    (SHIPYARD_RUN_WORKERS=false) that wrk drives, and a `shipyard work` process that handles.
wrk drives each with signed 22 KB `pull_request` deliveries (action `locked`: routed, validated
and handled, but no GitHub call) with a unique X-GitHub-Delivery per request. After wrk stops the
script waits for the inbox to drain and reports acks/s, latency p50/p99, handled/s, and
acknowledged deliveries that were not stored (lost).

    SHIPYARD_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python bench/bench_intake_throughput.py [--duration 20] [--connections 16] \\
            [--only bare,postgresql,pg-split] [--rounds 3]

With `--rounds N` the servers are measured in turn N times (A B C A B C …) and the medians
are printed after the rounds, each round's ratio taken against that round's bare endpoint.

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
from statistics import median
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
        # `work` is `shipyard work`: the workers, and only /healthz, /readyz, /metrics.
        app = create_app(load_settings(), intake=kind != "work")
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
    load: float = 0.0  # 1-minute load average when the server's load ended
    cpu_ms_per_ack: float | None = None  # CPU of the process wrk drove, per acknowledgement
    work_cpu_ms_per_ack: float | None = None  # CPU of pg-split's work process, per ack
    bare_acks_per_s: float | None = None  # the bare endpoint of the same round

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
    name: str,
    url: str,
    *,
    args: argparse.Namespace,
    env: dict[str, str],
    port: int,
    split: bool = False,
) -> Result:
    run = uuid.uuid4().hex[:10]
    env = {**env, "SHIPYARD_DATABASE_URL": url, "BENCH_RUN": run}
    procs: list[subprocess.Popen[bytes]] = []
    if split:
        # Intake first (it migrates the fresh schema), then the handling process beside it.
        procs.append(_start("bot", port, {**env, "SHIPYARD_RUN_WORKERS": "false"}))
        work_env = {**env, "SHIPYARD_WORKER_THREADS": str(args.work_threads)}
        from bot.base.local_server import free_port

        procs.append(_start("work", free_port(), work_env))
    else:
        procs.append(_start("bot", port, env))
    try:
        before = [_cpu_s(p.pid) for p in procs]
        result = _result(name, _wrk(port, args=args, env=env))
        result.load = os.getloadavg()[0]
        spent = [_cpu_s(p.pid) - b for p, b in zip(procs, before, strict=True)]
        if result.acked:
            result.cpu_ms_per_ack = 1000 * spent[0] / result.acked
            if split:
                result.work_cpu_ms_per_ack = 1000 * spent[1] / result.acked
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
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    return result


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    print(
        f"{'server':<11} {'acks/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'handled/s':>9} {'stored':>7} {'done':>7} {'failed':>6} {'lost':>5} "
        f"{'non2xx':>6} {'sockerr':>7} {'vs bare':>7} {'load':>5} {'cpu ms/ack':>10}"
    )
    for r in results:
        ratio = f"{r.acks_per_s / r.bare_acks_per_s:.2f}" if r.bare_acks_per_s else "-"
        handled = f"{r.handled_per_s:.0f}" if r.handled_per_s is not None else "-"
        print(
            f"{r.name:<11} {r.acks_per_s:8.0f} {r.p50_ms:7.1f} {r.p99_ms:7.1f} {r.max_ms:7.0f} "
            f"{handled:>9} {_n(r.stored):>7} {_n(r.handled):>7} {_n(r.failed):>6} "
            f"{_n(r.lost):>5} {r.non_2xx:6d} {r.socket_errors:7d} {ratio:>7} {r.load:5.1f} "
            f"{_cpu(r):>10}"
        )


def _cpu(r: Result) -> str:
    """CPU per ack of the serving process (+ the work process of pg-split)."""
    if r.cpu_ms_per_ack is None:
        return "-"
    if r.work_cpu_ms_per_ack is None:
        return f"{r.cpu_ms_per_ack:.2f}"
    return f"{r.cpu_ms_per_ack:.2f}+{r.work_cpu_ms_per_ack:.2f}"


def _print_medians(results: list[Result]) -> None:
    names = list(dict.fromkeys(r.name for r in results))
    print(f"\nmedians of {len(results) // max(1, len(names))} rounds")
    print(
        f"{'server':<11} {'acks/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'handled/s':>9} "
        f"{'lost':>5} {'vs bare':>7} {'load':>9} {'cpu ms/ack':>10}"
    )
    for name in names:
        rows = [r for r in results if r.name == name]
        handled = [r.handled_per_s for r in rows if r.handled_per_s is not None]
        ratios = [r.acks_per_s / r.bare_acks_per_s for r in rows if r.bare_acks_per_s]
        lost = sum(r.lost or 0 for r in rows) if rows[0].stored is not None else None
        loads = [r.load for r in rows]
        print(
            f"{name:<11} {median(r.acks_per_s for r in rows):8.0f} "
            f"{median(r.p50_ms for r in rows):7.1f} {median(r.p99_ms for r in rows):7.1f} "
            f"{(f'{median(handled):.0f}' if handled else '-'):>9} {_n(lost):>5} "
            f"{(f'{median(ratios):.2f}' if ratios else '-'):>7} "
            f"{min(loads):4.1f}-{max(loads):<4.1f} {_median_cpu(rows):>10}"
        )


def _median_cpu(rows: list[Result]) -> str:
    serving = [r.cpu_ms_per_ack for r in rows if r.cpu_ms_per_ack is not None]
    work = [r.work_cpu_ms_per_ack for r in rows if r.work_cpu_ms_per_ack is not None]
    if not serving:
        return "-"
    return f"{median(serving):.2f}" + (f"+{median(work):.2f}" if work else "")


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _measure(kind: str, args: argparse.Namespace, env: dict[str, str], tmp: str) -> Result | None:
    from bot.base.local_server import free_port

    if kind == "bare":
        port = free_port()
        proc = _start("bare", port, {**env, "BENCH_RUN": "bare"})
        try:
            before = _cpu_s(proc.pid)
            result = _result("bare", _wrk(port, args=args, env=env))
            result.load = os.getloadavg()[0]
            if result.acked:
                result.cpu_ms_per_ack = 1000 * (_cpu_s(proc.pid) - before) / result.acked
            return result
        finally:
            proc.terminate()
            proc.wait(30)
    if kind == "sqlite":
        url = f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:8]}.db"
        return _measure_bot("sqlite", url, args=args, env=env, port=free_port())
    base = os.environ.get(POSTGRES_ENV)
    if base is None:
        print(f"{kind} skipped: {POSTGRES_ENV} is not set", file=sys.stderr)
        return None
    with _postgres_schema(base) as url:
        return _measure_bot(
            kind, url, args=args, env=env, port=free_port(), split=kind == "pg-split"
        )


KINDS = ("bare", "sqlite", "postgresql", "pg-split")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--drain-timeout", type=float, default=120)
    parser.add_argument(
        "--only",
        default="bare,sqlite,postgresql",
        help=f"comma-separated servers to run, in this order ({', '.join(KINDS)})",
    )
    parser.add_argument("--rounds", type=int, default=1, help="measure every server N times")
    parser.add_argument(
        "--work-threads", type=int, default=2, help="inbox worker threads of pg-split's work"
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
    only = [k for k in args.only.split(",") if k]
    unknown = set(only) - set(KINDS)
    if unknown:
        sys.exit(f"unknown server(s): {', '.join(sorted(unknown))}")

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
        for _ in range(args.rounds):
            bare: Result | None = None
            for kind in only:
                result = _measure(kind, args, env, tmp)
                if result is None:
                    continue
                if kind == "bare":
                    bare = result
                result.bare_acks_per_s = bare.acks_per_s if bare else None
                results.append(result)
                print(
                    f"{result.name}: {result.acks_per_s:.0f} acks/s, p99 {result.p99_ms:.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    _print(results, args, payload)
    if args.rounds > 1:
        _print_medians(results)


if __name__ == "__main__":
    main()
