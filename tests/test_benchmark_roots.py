"""A benchmark URI from a registry is read only inside the operator's roots, checked before I/O."""

from __future__ import annotations

import hashlib
import http.server
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from bot.base.settings import load_settings
from bot.sandbox.github import generate_app_keypair
from evaluators.artifacts.benchmark_data import (
    BenchmarkError,
    check_location,
    is_internal_address,
    load_benchmark,
)
from evaluators.policy import BenchmarkPolicy
from tests.http_servers import serve

FRAME = pd.DataFrame({"customer_id": ["C1", "C2"], "churned": [0, 1]})


def _public(_host: str) -> list[str]:
    return ["93.184.216.34"]


def _private(_host: str) -> list[str]:
    return ["10.0.0.7"]


def _metadata(_host: str) -> list[str]:
    return ["169.254.169.254"]


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "benchmarks"
    (root / "churn").mkdir(parents=True)
    (root / "churn" / "bench.parquet").write_bytes(b"PAR1")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN=hunter2")
    (root / "churn" / "link.parquet").symlink_to(secret)
    return {"root": root, "secret": secret}


ALLOWED = [
    ("churn/bench.parquet", "a relative path inside the root"),
    ("churn/../churn/bench.parquet", "a dot-dot that stays inside the root"),
    ("https://data.example.com/bench/churn.parquet", "a URL under an https root"),
    ("https://DATA.example.com:443/bench/x.csv", "a URL with the host's case and default port"),
    ("https://data.example.com/bench/x.csv?sig=abc", "a presigned URL with a query"),
    ("s3://acme-bench/churn/2026.parquet", "an object under an s3 root"),
]


@pytest.mark.parametrize(("uri", "why"), ALLOWED, ids=[why for _, why in ALLOWED])
def test_locations_inside_a_root_are_allowed(roots: dict[str, Path], uri: str, why: str) -> None:
    check_location(
        uri,
        base_dir=roots["root"],
        roots=[str(roots["root"]), "https://data.example.com/bench/", "s3://acme-bench/churn/"],
        resolve=_public,
    )


REFUSED = [
    ("../../etc/passwd", _public, "outside the locations"),
    ("/etc/passwd", _public, "outside the locations"),
    ("churn/link.parquet", _public, "outside the locations"),
    ("file:///proc/self/environ", _public, "file:// URIs are refused"),
    ("http://169.254.169.254/latest/meta-data/", _public, "outside the locations"),
    ("https://data.example.com/other/x.csv", _public, "outside the locations"),
    ("https://data.example.com/benchmark/x.csv", _public, "outside the locations"),
    ("https://data.example.com/bench/../admin", _public, "outside the locations"),
    ("https://data.example.com/bench/%2e%2e/admin", _public, "outside the locations"),
    ("http://data.example.com/bench/x.csv", _public, "outside the locations"),
    ("https://data.example.com:8443/bench/x.csv", _public, "outside the locations"),
    ("https://user:pw@data.example.com/bench/x.csv", _public, "credentials"),
    ("https://data.example.com/bench/x.csv", _private, "internal address"),
    ("https://data.example.com/bench/x.csv", _metadata, "internal address"),
    ("s3://acme-bench/other/x.parquet", _public, "outside the locations"),
    ("s3://acme-bench/churn/../other/x.parquet", _public, "outside the locations"),
    ("simplecache::s3://acme-bench/churn/x.parquet", _public, "outside the locations"),
    ("memory://churn/bench.parquet", _public, "outside the locations"),
    ("gs://acme-bench/churn/x.parquet", _public, "outside the locations"),
]


@pytest.mark.parametrize(
    ("uri", "resolve", "words"),
    REFUSED,
    ids=[
        "a dot-dot path out of the root is refused",
        "an absolute path outside the root is refused",
        "a symlink inside the root pointing outside is refused",
        "a file uri is refused",
        "the cloud metadata address is refused",
        "a URL beside the root's path is refused",
        "a path that only starts like the root's is refused",
        "a URL with a dot-dot segment is refused",
        "a URL with an encoded dot-dot segment is refused",
        "plain http under an https root is refused",
        "another port on the root's host is refused",
        "credentials in the URL are refused",
        "a root's host resolving to a private address is refused",
        "a root's host resolving to the metadata address is refused",
        "an object beside the s3 prefix is refused",
        "an s3 key with a dot-dot is refused",
        "a chained fsspec URL is refused",
        "an in-memory fsspec URL is refused",
        "another object store scheme is refused",
    ],
)
def test_locations_outside_every_root_are_refused(
    roots: dict[str, Path], uri: str, resolve: object, words: str
) -> None:
    with pytest.raises(BenchmarkError, match=words) as caught:
        check_location(
            uri,
            base_dir=roots["root"],
            roots=[str(roots["root"]), "https://data.example.com/bench/", "s3://acme-bench/churn/"],
            resolve=resolve,  # type: ignore[arg-type]
        )
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("169.254.169.254", True),
        ("fe80::1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),  # noqa: S104 (an address under test, not a binding)
        ("::ffff:169.254.169.254", True),
        ("93.184.216.34", False),
        ("2606:4700::1111", False),
    ],
)
def test_internal_addresses_are_recognised(address: str, internal: bool) -> None:
    assert is_internal_address(address) is internal


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        if self.path.startswith("/bench/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        body = FRAME.to_csv(index=False).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.paths = []
    with serve(_Recorder) as url:
        yield url


def _policy(uri: str, data: bytes) -> BenchmarkPolicy:
    return BenchmarkPolicy(uri=uri, sha256=hashlib.sha256(data).hexdigest(), label_column="churned")


def test_a_root_that_names_a_loopback_address_may_be_read(server: str) -> None:
    data = FRAME.to_csv(index=False).encode()
    bench = load_benchmark(
        policy=_policy(f"{server}/bench/b.csv", data), base_dir=None, roots=[f"{server}/bench/"]
    )
    assert bench.rows == 2


def test_a_refused_url_is_never_requested(server: str) -> None:
    with pytest.raises(BenchmarkError, match="outside the locations"):
        load_benchmark(
            policy=_policy(f"{server}/private/b.csv", b""),
            base_dir=None,
            roots=[f"{server}/bench/"],
        )
    assert _Recorder.paths == []


def test_a_redirect_is_refused_and_not_followed(server: str) -> None:
    with pytest.raises(BenchmarkError, match="redirect"):
        load_benchmark(
            policy=_policy(f"{server}/bench/redirect", b""),
            base_dir=None,
            roots=[f"{server}/bench/"],
        )
    assert _Recorder.paths == ["/bench/redirect"]


def test_a_secret_file_is_never_echoed_even_without_roots(roots: dict[str, Path]) -> None:
    # The CLI passes no roots (its user is the operator); the messages still never quote a file.
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark(policy=_policy(str(roots["secret"]), b"other"), base_dir=None)
    secret = roots["secret"].read_bytes()
    assert "hunter2" not in str(caught.value)
    assert hashlib.sha256(secret).hexdigest() not in str(caught.value)


def test_the_operators_roots_come_from_the_environment_and_default_to_benchmark_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    private_pem, _ = generate_app_keypair()
    base = {
        "github_app_id": 1,
        "github_private_key": private_pem,
        "github_webhook_secret": "a-real-webhook-secret-1234",
        "benchmark_dir": tmp_path,
    }
    assert load_settings(**base).allowed_benchmark_roots() == [str(tmp_path)]
    monkeypatch.setenv("SHIPYARD_BENCHMARK_ROOTS", '["/data/bench", "s3://acme/bench/"]')
    assert load_settings(**base).allowed_benchmark_roots() == ["/data/bench", "s3://acme/bench/"]
