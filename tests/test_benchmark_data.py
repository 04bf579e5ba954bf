"""The benchmark is fetched, checked against its sha256 pin, and only then parsed."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from evaluators.artifacts.benchmark_data import BenchmarkError, load_benchmark
from evaluators.policy import BenchmarkPolicy
from tests.http_servers import serve_directory

FRAME = pd.DataFrame(
    {
        "customer_id": ["C1", "C2", "C3", "C4"],
        "segment": ["a", "a", "b", "b"],
        "f": [0.1, 0.2, 0.3, 0.4],
        "churned": [0, 1, 0, 1],
    }
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _policy(uri: str, data: bytes, **overrides: object) -> BenchmarkPolicy:
    fields: dict[str, object] = {
        "uri": uri,
        "sha256": _sha(data),
        "label_column": "churned",
        "id_column": "customer_id",
        "segment_columns": ["segment"],
    }
    return BenchmarkPolicy.model_validate({**fields, **overrides})


@pytest.fixture
def parquet(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "data" / "bench.parquet"
    path.parent.mkdir()
    FRAME.to_parquet(path, index=False)
    return path, path.read_bytes()


@pytest.fixture
def served(tmp_path: Path, parquet: tuple[Path, bytes]) -> Iterator[str]:
    """A loopback HTTP server over the data directory."""
    with serve_directory(parquet[0].parent) as url:
        yield url


def test_a_relative_path_is_read_from_the_base_directory(
    tmp_path: Path, parquet: tuple[Path, bytes]
) -> None:
    data = load_benchmark(policy=_policy("data/bench.parquet", parquet[1]), base_dir=tmp_path)
    assert data.rows == 4 and data.sha256 == _sha(parquet[1])
    assert data.frame["customer_id"].tolist() == ["C1", "C2", "C3", "C4"]
    assert data.uri == "data/bench.parquet"


def test_a_file_uri_is_read(parquet: tuple[Path, bytes]) -> None:
    data = load_benchmark(policy=_policy(parquet[0].as_uri(), parquet[1]), base_dir=None)
    assert data.frame["churned"].sum() == 2


def test_an_http_benchmark_is_downloaded_and_verified(
    served: str, parquet: tuple[Path, bytes]
) -> None:
    data = load_benchmark(policy=_policy(f"{served}/bench.parquet", parquet[1]), base_dir=None)
    assert data.rows == 4 and data.sha256 == _sha(parquet[1])


def test_an_http_error_is_reported_with_its_status(
    served: str, parquet: tuple[Path, bytes]
) -> None:
    with pytest.raises(BenchmarkError, match="HTTP 404"):
        load_benchmark(policy=_policy(f"{served}/missing.parquet", parquet[1]), base_dir=None)


def test_a_download_over_the_size_cap_is_refused(served: str, parquet: tuple[Path, bytes]) -> None:
    with pytest.raises(BenchmarkError, match="larger than the 100-byte limit"):
        load_benchmark(
            policy=_policy(f"{served}/bench.parquet", parquet[1]), base_dir=None, max_bytes=100
        )


def test_a_wrong_pin_names_the_pin_but_never_the_files_hash(
    tmp_path: Path, parquet: tuple[Path, bytes]
) -> None:
    policy = _policy("data/bench.parquet", parquet[1], sha256="0" * 64)
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark(policy=policy, base_dir=tmp_path)
    assert _sha(parquet[1]) not in str(caught.value) and "0" * 64 in str(caught.value)


def test_nothing_is_parsed_when_the_pin_does_not_match(tmp_path: Path) -> None:
    (tmp_path / "bench.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(BenchmarkError, match="does not match the sha256 pin"):
        load_benchmark(policy=_policy("bench.parquet", b"other"), base_dir=tmp_path)


def test_missing_columns_are_named_but_the_files_own_columns_are_not(
    tmp_path: Path, parquet: tuple[Path, bytes]
) -> None:
    policy = _policy(
        "data/bench.parquet",
        parquet[1],
        label_column="label",
        segment_columns=["segment", "region"],
    )
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark(policy=policy, base_dir=tmp_path)
    message = str(caught.value)
    assert "label, region" in message and "customer_id" not in message


@pytest.mark.parametrize(
    ("name", "compress"),
    [("bench.csv", False), ("bench.data", False), ("bench.csv.gz", True)],
    ids=["csv by extension", "csv without a known extension", "gzipped csv"],
)
def test_csv_benchmarks_are_read(tmp_path: Path, name: str, compress: bool) -> None:
    path = tmp_path / name
    FRAME.to_csv(path, index=False, compression="gzip" if compress else None)
    data = load_benchmark(policy=_policy(name, path.read_bytes()), base_dir=tmp_path)
    assert data.frame["customer_id"].tolist() == ["C1", "C2", "C3", "C4"]


def test_parquet_is_recognised_by_its_magic_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bench.bin"
    FRAME.to_parquet(path, index=False)
    data = load_benchmark(policy=_policy("bench.bin", path.read_bytes()), base_dir=tmp_path)
    assert data.rows == 4


def test_any_fsspec_uri_is_read(parquet: tuple[Path, bytes]) -> None:
    with fsspec.open("memory://shipyard-test/bench.parquet", "wb") as handle:
        handle.write(parquet[1])
    data = load_benchmark(
        policy=_policy("memory://shipyard-test/bench.parquet", parquet[1]), base_dir=None
    )
    assert data.rows == 4


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_an_s3_uri_without_the_extra_says_what_to_install() -> None:
    with pytest.raises(BenchmarkError, match=r"pip install 'shipyard\[s3\]'"):
        load_benchmark(policy=_policy("s3://bucket/bench.parquet", b""), base_dir=None)


@pytest.mark.parametrize(
    ("uri", "base", "words"),
    [
        ("bench.parquet", False, "no base directory"),
        ("nowhere.parquet", True, "not found"),
    ],
    ids=["a relative path without a base directory is an error", "a missing file is named"],
)
def test_unreadable_locations_are_explained(
    tmp_path: Path, uri: str, base: bool, words: str
) -> None:
    with pytest.raises(BenchmarkError, match=words):
        load_benchmark(policy=_policy(uri, b""), base_dir=tmp_path if base else None)
