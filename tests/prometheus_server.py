"""A real Prometheus (the Debian package) on a free loopback port, for tests: started on a data
directory and a config the test writes, ready when `/-/ready` says so, stopped on exit."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bot.base.local_server import free_port
from bot.base.tls import shared_tls
from bot.base.waiting import wait_until
from tests.traffic_world import require


@contextmanager
def running_prometheus(
    root: Path, config: str, *, retention: str = "15d", port: int | None = None
) -> Iterator[str]:
    """Prometheus with `config` (YAML text) and its TSDB under `root / "data"`; yields its URL.
    `port`: a port chosen beforehand (a bot configured before Prometheus starts)."""
    binary = require("prometheus")
    config_file = root / "prometheus.yml"
    config_file.write_text(config)
    port = port or free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--storage.tsdb.retention.time={retention}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError("prometheus exited at start")
        try:
            return httpx.get(f"{url}/-/ready", timeout=1, verify=shared_tls()).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout_s=30, what="Prometheus to be ready", every_s=0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
