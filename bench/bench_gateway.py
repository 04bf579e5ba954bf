"""The gateway against the obvious alternatives, in one run on this machine.

Run: `python bench/bench_gateway.py [--seconds 5] [--requests 1000]`.

1. Single-row latency: gateway p50 vs a bare `InferenceSession.run` call and vs a minimal
   FastAPI + onnxruntime endpoint (bench/minimal_onnx_endpoint.py), sequential requests.
   Goal: the gateway adds <= 1 ms p50.
2. Throughput (wrk, closed loop): gateway requests/s as a share of the minimal endpoint's.
   Goal: >= 70%.
3. Mirroring: production p99 at a fixed rate below saturation (wrk, a per-connection delay)
   with 100% of requests mirrored to a shadow vs none, and mirrored requests dropped; the shadow
   in a worker process (`--mirror-mode process`, the default) and in a thread of the gateway
   process (`--mirror-mode thread`), alternating with no mirroring.
   Goal: <= 10% p99 rise, zero drops.

wrk shares the machine's cores with the servers; on a loaded machine every figure is noisy,
so servers are measured alternately and each figure is the best (throughput) or the median
(p99) of several rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.routing import Deployed, ModelRoute, Routing, ShadowSlot, save_routing  # noqa: E402
from gateway.store import ArtifactStore  # noqa: E402

MODEL_DIR = ROOT / "fixtures" / "registry" / "production" / "models" / "churn"
SHADOW_DIR = ROOT / "fixtures" / "registry" / "candidate_better" / "models" / "churn"
BENCHMARK = ROOT / "fixtures" / "benchmark" / "churn_benchmark.parquet"
FEATURES = [
    "tenure_months",
    "monthly_spend",
    "seats_log",
    "logins_30d",
    "days_since_last_login",
    "usage_trend",
    "feature_adoption",
    "support_tickets_90d",
    "ticket_sentiment",
    "nps_score",
    "contract_months_remaining",
    "discount_pct",
    "price_increase_pct",
    "payment_failures_12m",
    "budget_cycle_position",
    "procurement_tender",
    "region_price_index",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVER_PIDS: list[int] = []  # the pid of the server in the innermost `server` context


@contextmanager
def server(args: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [*args, "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    SERVER_PIDS.append(proc.pid)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.post(f"{url}/v2/models/churn/infer", content=b"{}").status_code:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        SERVER_PIDS.pop()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def body(row: np.ndarray) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [1, len(row)],
                    "datatype": "FP32",
                    "data": row.tolist(),
                }
            ]
        }
    ).encode()


def sequential_ms(url: str, bodies: list[bytes]) -> np.ndarray:
    out = []
    with httpx.Client(base_url=url) as client:
        for b in bodies[:50]:
            client.post("/v2/models/churn/infer", content=b)  # warm up
        for b in bodies:
            started = time.perf_counter()
            response = client.post("/v2/models/churn/infer", content=b)
            out.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    return np.asarray(out)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str, payload: bytes, seconds: int, connections: int, delay_ms: float = 0.0
) -> tuple[float, float, int]:
    """(requests/s, p99 ms, non-2xx) from wrk; `delay_ms` paces each connection (fixed rate)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(payload.decode())}\n"
        )
        if delay_ms:
            script.write(f"function delay() return {delay_ms:.3f} end\n")
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script.name,
            f"{url}/v2/models/churn/infer",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(script.name)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", done.stdout)
    assert rate and p99, done.stdout
    return (
        float(rate.group(1)),
        float(p99.group(1)) * _UNITS[p99.group(2)],
        (int(errors.group(1)) if errors else 0),
    )


def metric_total(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def shadow_answers(url: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(f"{url}/metrics").text.splitlines()
        if line.startswith("shipyard_gateway_requests_total{") and 'variant="shadow"' in line
    )


def drops_by_reason(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        found = re.match(
            r'shipyard_gateway_mirror_dropped_total\{.*reason="([^"]+)".*\} (\S+)', line
        )
        if found:
            out[found.group(1)] = out.get(found.group(1), 0.0) + float(found.group(2))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--load-share", type=float, default=0.5, help="of gateway saturation")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mirror-rounds", type=int, default=0, help="rounds of 3. (0: --rounds)")
    args = parser.parse_args()

    rows = pd.read_parquet(BENCHMARK, columns=FEATURES).head(args.requests)
    x = rows.to_numpy(dtype=np.float32)
    bodies = [body(r) for r in x]

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(MODEL_DIR / "weights" / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    bare = []
    for r in x:
        started = time.perf_counter()
        session.run(["probabilities"], {"features": r.reshape(1, -1)})
        bare.append((time.perf_counter() - started) * 1000)
    bare_p50 = float(np.median(bare))

    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(str(Path(tmp) / "store"))
        prod = Deployed(
            version="1.0.0", sha256=store.publish(MODEL_DIR, model="churn", version="1.0.0")
        )
        shadow_sha = store.publish(SHADOW_DIR, model="churn", version="1.1.0")
        plain, mirrored = Path(tmp) / "plain.json", Path(tmp) / "mirrored.json"
        save_routing(plain, Routing(models={"churn": ModelRoute(production=prod)}))
        save_routing(
            mirrored,
            Routing(
                models={
                    "churn": ModelRoute(
                        production=prod,
                        shadow=ShadowSlot(version="1.1.0", sha256=shadow_sha, mirror_share=1.0),
                    )
                }
            ),
        )
        gateway_cmd = [sys.executable, "-m", "gateway.cli", "serve", "--store", store.url]
        minimal_cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.minimal_onnx_endpoint:app",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        env = {"MODEL": str(MODEL_DIR / "weights" / "model.onnx")}

        # Alternate the two servers so a burst of load from other processes hits both alike.
        minimal_ms, gateway_ms, minimal_rates, gateway_rates = [], [], [], []
        for _ in range(args.rounds):
            with server(minimal_cmd, env) as url:
                minimal_ms.append(sequential_ms(url, bodies))
                minimal_rates.append(wrk(url, bodies[0], args.seconds, args.connections)[0])
            with server([*gateway_cmd, "--routing", str(plain)]) as url:
                gateway_ms.append(sequential_ms(url, bodies))
                gateway_rates.append(wrk(url, bodies[0], args.seconds, args.connections)[0])
        minimal_rate, gateway_rate = max(minimal_rates), max(gateway_rates)
        # Fixed rate: each of C connections waits delay ms between requests.
        target = gateway_rate * args.load_share
        delay_ms = max(1000 * args.connections / target - float(np.median(gateway_ms)), 0.0)
        # The shadow in a worker process (the default) vs in a thread of the gateway process.
        variants = {
            "none": ["--routing", str(plain)],
            "thread": ["--routing", str(mirrored), "--mirror-mode", "thread"],
            "process": ["--routing", str(mirrored), "--mirror-mode", "process"],
        }
        runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label in variants}
        dropped: dict[str, dict[str, float]] = {label: {} for label in variants}
        enqueued = dict.fromkeys(variants, 0.0)
        cpu_ms: dict[str, list[float]] = {label: [] for label in variants}
        for _ in range(args.mirror_rounds or args.rounds):
            for label, options in variants.items():
                with server([*gateway_cmd, *options]) as url:
                    sequential_ms(url, bodies[:100])  # warm up
                    if label != "none":
                        # A worker process takes seconds to start on a loaded machine: measure
                        # the steady state, once the shadow answered the warm-up's mirrors.
                        deadline = time.monotonic() + 60
                        while time.monotonic() < deadline and shadow_answers(url) < 150:
                            time.sleep(0.1)
                    before = cpu_seconds(SERVER_PIDS[-1])
                    result = wrk(url, bodies[0], args.seconds, args.connections, delay_ms)
                    runs[label].append(result)
                    # The gateway process's own CPU per 1000 answers (a worker's is not in it).
                    spent = cpu_seconds(SERVER_PIDS[-1]) - before
                    cpu_ms[label].append(1e6 * spent / (result[0] * args.seconds))
                    if label != "none":
                        time.sleep(0.5)  # the worker finishes its queue before counters are read
                        for reason, n in drops_by_reason(url).items():
                            dropped[label][reason] = dropped[label].get(reason, 0.0) + n
                        enqueued[label] += metric_total(url, "shipyard_gateway_mirrored_total")

    g50 = float(np.median(np.concatenate(gateway_ms)))
    m50 = float(np.median(np.concatenate(minimal_ms)))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (shared machine)")
    print(f"1. single-row latency, {args.requests} sequential requests x {args.rounds}, p50:")
    print(
        f"   bare InferenceSession.run {bare_p50:.3f} ms | minimal endpoint {m50:.3f} ms | "
        f"gateway {g50:.3f} ms"
    )
    print(
        f"   gateway - minimal endpoint: {g50 - m50:+.3f} ms (goal <= 1 ms); "
        f"gateway - bare run (HTTP included): {g50 - bare_p50:+.3f} ms"
    )
    print(
        f"2. throughput, wrk -c{args.connections} {args.seconds} s, best of {args.rounds}: "
        f"minimal {minimal_rate:.0f}/s, gateway {gateway_rate:.0f}/s, "
        f"ratio {gateway_rate / minimal_rate:.0%} (goal >= 70%)"
    )
    p99 = {label: float(np.median([r[1] for r in found])) for label, found in runs.items()}
    print(
        f"3. fixed rate ~{target:.0f}/s ({args.load_share:.0%} of gateway saturation), "
        f"{len(runs['none'])} alternating runs each, median p99:"
    )
    for label, found in runs.items():
        detail = ", ".join(f"{r[0]:.0f}/s p99 {r[1]:.2f} ms non-2xx {r[2]}" for r in found)
        print(f"   {label:8s}: {detail}")
    print(
        "   gateway process CPU per 1000 answers, median: "
        + ", ".join(f"{label} {np.median(found):.0f} ms" for label, found in cpu_ms.items())
    )
    for label in ("thread", "process"):
        print(
            f"   100% mirrored, shadow in a {label:7s}: p99 mirrored/none "
            f"{p99[label] / p99['none']:.2f} (goal <= 1.10); "
            f"mirrored {enqueued[label]:.0f}, dropped {sum(dropped[label].values()):.0f} "
            f"(goal 0) {dropped[label] or ''}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
