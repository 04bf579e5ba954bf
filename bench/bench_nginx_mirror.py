"""nginx mirror coverage and the mirror's cost to answers, through Shipyard's nginx router.

Run: `python bench/bench_nginx_mirror.py [--duration 5] [--connections 128] [--shadow-delay-ms 20]`.
A real nginx rendered by `NginxRouter` in front of three stand-in gateways (stdlib HTTP servers,
the same as the tests'); wrk sends POSTs with keep-alive. For each `worker_connections` setting
it runs the same load without a shadow and with 100% mirrored, and prints the answers' p50/p99,
the ratio of p99 with and without the mirror, and the coverage: mirrored requests that reached
the shadow / answered requests. The shadow answers after `--shadow-delay-ms`, holding its
connections like a slower model would.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.base.local_server import free_port  # noqa: E402
from bot.rollout.routers.nginx import NginxRouter  # noqa: E402
from gateway.routing import Deployed, ModelRoute, ShadowSlot  # noqa: E402
from tests.traffic_world import RunningNginx, Upstream  # noqa: E402

LUA = "\n".join(
    [
        'wrk.method = "POST"',
        "wrk.body = '{\"inputs\": []}'",
        'wrk.headers["Content-Type"] = "application/json"',
        "",
    ]
)


def wrk(url: str, script: Path, *, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50": ms("50%"),
        "p99": ms("99%"),
        "requests": requests,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def run(worker_connections: int, args: argparse.Namespace) -> None:
    production, shadow = Upstream("1.0.0"), Upstream("1.2.0", delay_s=args.shadow_delay_ms / 1000)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        router = NginxRouter(
            directory=directory,
            listen_port=free_port(),
            upstreams={"churn": {"1.0.0": production.address, "1.2.0": shadow.address}},
            worker_connections=worker_connections,
        )
        nginx = RunningNginx(router.directory, router.install())
        script = directory / "post.lua"
        script.write_text(LUA)
        url = f"http://127.0.0.1:{router.port}/v2/models/churn/infer"
        try:
            plain = ModelRoute(production=Deployed(version="1.0.0", sha256="a" * 64))
            router.apply("churn", plain)
            base = wrk(url, script, duration=args.duration, connections=args.connections)
            mirrored_route = plain.model_copy(
                update={"shadow": ShadowSlot(version="1.2.0", sha256="c" * 64, mirror_share=1.0)}
            )
            router.apply("churn", mirrored_route)
            before_p, before_s = production.count(), shadow.count()
            mirrored = wrk(url, script, duration=args.duration, connections=args.connections)
            answered = production.count() - before_p
            reached = shadow.settled_count() - before_s
            alerts = (
                (directory / "error.log").read_text().count("worker_connections are not enough")
            )
        finally:
            nginx.stop()
            production.stop()
            shadow.stop()
    ratio = mirrored["p99"] / base["p99"]
    print(
        f"worker_connections={worker_connections}: "
        f"no mirror p50 {base['p50']:.2f} ms p99 {base['p99']:.2f} ms ({base['requests']:.0f} req)"
        f" | 100% mirror p50 {mirrored['p50']:.2f} ms p99 {mirrored['p99']:.2f} ms"
        f" ({mirrored['requests']:.0f} req, non-2xx {mirrored['non2xx']:.0f})"
        f" | p99 ratio {ratio:.2f} | coverage {reached}/{answered}"
        f" = {reached / max(answered, 1):.4f} | 'not enough' alerts {alerts}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--shadow-delay-ms", type=float, default=20)
    parser.add_argument("--worker-connections", default="256,4096")
    args = parser.parse_args()
    started = time.monotonic()
    for value in args.worker_connections.split(","):
        run(int(value), args)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
