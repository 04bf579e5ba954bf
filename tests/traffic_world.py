"""Real pieces for the traffic-router tests: tiny upstream HTTP servers that answer with their
version name and record what they received, and a real nginx run from a directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.base.waiting import wait_until


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # nginx opens connections in bursts; the default backlog is 5

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # nginx closing an idle keepalive connection is not news


def require(program: str) -> str:
    """The program's path; under CI=true a missing one fails the test, elsewhere it skips."""
    found = shutil.which(program, path=os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin")))
    if found is None:
        message = f"{program} is not installed (Debian package; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass(frozen=True)
class Received:
    path: str
    request_id: str
    variant: str
    body: bytes


@dataclass
class Upstream:
    """An HTTP server on a free loopback port standing in for one version's gateway."""

    version: str
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if upstream.delay_s:
                    time.sleep(upstream.delay_s)  # a slow shadow, on purpose
                with upstream._lock:
                    upstream.received.append(
                        Received(
                            self.path,
                            self.headers.get("X-Request-Id", ""),
                            self.headers.get("X-Shipyard-Variant", ""),
                            body,
                        )
                    )
                answer = json.dumps({"version": upstream.version}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def settled_count(self, *, timeout_s: float = 20) -> int:
        """The count once it has stopped moving (mirrors arrive a little after the answers)."""

        seen = [self.count(), time.monotonic()]  # the count, and since when it is that

        def still() -> bool:
            now = self.count()
            if now != seen[0]:
                seen[:] = [now, time.monotonic()]
                return False
            return time.monotonic() - seen[1] >= 0.2  # unchanged for a moment

        wait_until(still, timeout_s=timeout_s, what=f"{self.version}'s traffic to settle")
        return self.count()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RunningNginx:
    """`nginx -p <dir> -c <dir>/nginx.conf` in the foreground; stopped by `stop()`."""

    def __init__(self, directory: Path, config: Path) -> None:
        self.process = subprocess.Popen(
            [
                *(require("nginx"), "-p", str(directory), "-c", str(config)),
                *("-e", str(directory / "error.log"), "-g", "daemon off;"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_until(
            lambda: (directory / "nginx.pid").exists() or self.process.poll() is not None,
            timeout_s=10,
            what="nginx to write its pid file",
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"nginx did not start: {self.process.stderr!r}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # fast shutdown: nothing left to finish
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def infer(url: str, *, model: str = "churn", n: int, workers: int = 4) -> list[tuple[int, str]]:
    """Send `n` inference requests, each on a fresh connection: (status, answering version)."""

    def one(i: int) -> tuple[int, str]:
        answer = client.post(
            f"{url}/v2/models/{model}/infer",
            json={"id": str(i), "inputs": [{"name": "x", "shape": [1], "data": [i]}]},
            timeout=10,
        )
        version = answer.json().get("version", "") if answer.status_code == 200 else ""
        return answer.status_code, version

    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(limits=no_keepalive) as client, ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(n)))


def upstreams(*versions: str) -> Iterator[dict[str, Upstream]]:
    servers = {v: Upstream(v) for v in versions}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def nginx_router_file(folder: Path, *, upstreams: str, token: str) -> Path:
    """The operator's nginx router file (`SHIPYARD_*_NGINX`) and its token file, in `folder`;
    nginx's own files go to `folder/nginx`. `upstreams` is the YAML mapping, one line."""
    from bot.base.local_server import free_port

    (folder / "router-token").write_text(token + "\n", encoding="utf-8")
    path = folder / "nginx-router.yaml"
    path.write_text(
        f"directory: {folder / 'nginx'}\n"
        f"listen_port: {free_port()}\n"
        f"nginx: {require('nginx')}\n"
        f"router_token_file: {folder / 'router-token'}\n"
        f"upstreams: {upstreams}\n",
        encoding="utf-8",
    )
    return path


@contextmanager
def nginx_started(table: Path, router_file: Path) -> Iterator[Any]:
    """The bot's nginx router for `router_file`, and a real nginx started from the first
    configuration it writes (what `shipyard nginx-config` does)."""
    from bot.rollout.routers.factory import stage_router
    from bot.rollout.routers.nginx import NginxRouter

    router = stage_router(table, router_file)
    assert isinstance(router, NginxRouter)
    running = RunningNginx(router.directory, router.install())
    try:
        yield router
    finally:
        running.stop()
