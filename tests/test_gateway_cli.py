"""`shipyard-gateway` end to end, as an operator runs it: publish, route, serve (a real process),
replay traffic; a pickle is refused at publish; the prediction log is flushed on shutdown."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from bot.base.tls import shared_tls
from bot.base.waiting import wait_until
from gateway import names
from gateway.clock import write_clock_file
from gateway.traffic import model_features, read_rows, request_body
from tests.gateway_harness import BENCHMARK, ROOT, fixture_dir

CLI = [sys.executable, "-m", "gateway.cli"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    store, routing = tmp_path / "store", tmp_path / "routing.json"
    for version, variant in (("1.0.0", "production"), ("1.1.0", "candidate_better")):
        done = _cli(
            "publish",
            str(fixture_dir(variant)),
            "--store",
            str(store),
            "--model",
            "churn",
            "--version",
            version,
        )
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.strip()) == 64
    done = _cli(
        "route",
        "churn",
        "--production",
        "1.0.0",
        "--shadow",
        "1.1.0",
        "--mirror-share",
        "1",
        "--routing",
        str(routing),
        "--store",
        str(store),
    )
    assert done.returncode == 0, done.stderr
    assert "revision 1" in done.stdout
    with _serving(store, routing) as (url, proc):
        yield url, store, proc


@contextmanager
def _serving(
    store: Path, routing: Path, *options: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    where = ["--store", str(store), "--routing", str(routing), "--port", str(port)]
    proc = subprocess.Popen(
        [*CLI, "serve", *where, *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            answer = httpx.get(f"{url}/v2/health/ready", timeout=2, verify=shared_tls())
            return answer.status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout_s=40, what="shipyard-gateway serve to be ready")
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_publish_route_serve_and_replay_traffic(served) -> None:  # type: ignore[no-untyped-def]
    url, store, proc = served
    done = _cli(
        "traffic",
        str(BENCHMARK),
        "--url",
        url,
        "--model",
        "churn",
        "--rate",
        "100",
        "--rows",
        "150",
        "--concurrency",
        "4",
    )
    assert done.returncode == 0, done.stderr
    assert "sent 150 requests" in done.stdout and "errors 0" in done.stdout
    rate = float(done.stdout.split("s: ")[1].split(" requests/s")[0])
    assert 20 < rate <= 110
    assert "p99" in done.stdout

    proc.send_signal(signal.SIGTERM)  # a graceful stop drains the mirror and flushes the log
    proc.wait(timeout=30)
    log = pd.read_parquet(store / names.PREDICTION_LOG_DIR)
    counts = log["variant"].astype(str).value_counts()
    assert counts["production"] == 150
    assert counts["shadow"] >= 140  # on a loaded machine a few mirrors may be drained late


def test_a_pickle_is_refused_at_publish(tmp_path: Path) -> None:
    pickled = tmp_path / "churn"
    shutil.copytree(fixture_dir("production"), pickled)
    (pickled / "weights" / "model.onnx").write_bytes(pickle.dumps([1, 2, 3]))
    done = _cli(
        "publish",
        str(pickled),
        "--store",
        str(tmp_path / "store"),
        "--model",
        "churn",
        "--version",
        "1.0.0",
    )
    assert done.returncode == 1
    assert done.stderr.startswith("not published: weights/model.onnx is a Python pickle")
    assert not (tmp_path / "store" / "models").exists()


def test_behind_a_router_the_gateway_refuses_to_start_without_the_routers_token(
    tmp_path: Path,
) -> None:
    common = ["serve", "--store", str(tmp_path / "store"), "--routing", str(tmp_path / "r.json")]
    done = _cli(*common, "--behind-router")
    assert done.returncode == 1
    assert "--behind-router needs --router-token-file" in done.stderr
    (tmp_path / "token").write_text("short\n", encoding="utf-8")
    done = _cli(*common, "--behind-router", "--router-token-file", str(tmp_path / "token"))
    assert done.returncode == 1
    assert "token must hold 16-128 letters, digits, - or _" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_gateway_on_a_clock_file_logs_the_time_written_there(tmp_path: Path) -> None:
    """A demo or test that moves time by hand runs a real gateway process on the same time."""
    store, routing, clock_file = tmp_path / "store", tmp_path / "routing.json", tmp_path / "now"
    publish = ["--store", str(store), "--model", "churn", "--version", "1.0.0"]
    assert _cli("publish", str(fixture_dir("production")), *publish).returncode == 0
    route = ["churn", "--production", "1.0.0", "--routing", str(routing), "--store", str(store)]
    assert _cli("route", *route).returncode == 0
    first = datetime(2026, 11, 24, 23, 59, 30, tzinfo=UTC)
    write_clock_file(clock_file, first)
    options = ("--clock-file", str(clock_file), "--log-flush-every", "0.1")
    with _serving(store, routing, *options) as (url, _):
        features = model_features(url, "churn")
        _, rows = read_rows(BENCHMARK, features)
        for request_id, when in (("before-midnight", first), ("after", first + timedelta(hours=1))):
            write_clock_file(clock_file, when)
            answer = httpx.post(
                f"{url}/v2/models/churn/infer",
                content=request_body(features, rows[0]),
                headers={"content-type": "application/json", "x-request-id": request_id},
                timeout=10,
            )
            assert answer.status_code == 200

        def logged() -> int:  # flushed while serving: no shutdown needed
            log_dir = store / names.PREDICTION_LOG_DIR
            return len(pd.read_parquet(log_dir)) if log_dir.exists() else 0

        wait_until(lambda: logged() == 2, timeout_s=30, what="both requests in the log")
    log = pd.read_parquet(store / names.PREDICTION_LOG_DIR)
    times = dict(zip(log[names.LOG_REQUEST_ID], log[names.LOG_TIME], strict=True))
    assert times["before-midnight"] == pd.Timestamp(first)
    assert times["after"] == pd.Timestamp(first + timedelta(hours=1))
    days = dict(zip(log[names.LOG_REQUEST_ID], log["day"].astype(str), strict=True))
    assert days == {"before-midnight": "2026-11-24", "after": "2026-11-25"}
