"""The partitioned benchmark's manifest: what it pins, and what it refuses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evaluators.distributed.cluster import require_scheduler, shown_address
from evaluators.distributed.errors import DistributedError
from evaluators.distributed.manifest import FORMAT, parse_manifest, write_partitioned

SHA = "a" * 64


def manifest(**changes: Any) -> bytes:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "row_id_column": "row_id",
        "partitions": [{"file": "part-00000.parquet", "sha256": SHA, "rows": 3}],
        "segments": {"region": {"values": ["emea", "na"], "missing": False}},
    }
    doc.update(changes)
    return json.dumps(doc).encode()


def test_a_written_manifest_pins_every_partition_and_the_segment_values(tmp_path: Path) -> None:
    frames = [
        pd.DataFrame({"row_id": [1, 2], "region": ["na", None], "x": [0.1, 0.2]}),
        pd.DataFrame({"row_id": [3], "region": ["emea"], "x": [0.3]}),
    ]
    sha = write_partitioned(frames, tmp_path, row_id_column="row_id", segment_columns=["region"])
    data = (tmp_path / "manifest.json").read_bytes()
    assert sha == hashlib.sha256(data).hexdigest()
    found = parse_manifest(data)
    assert found.rows == 3 and found.row_id_column == "row_id"
    assert [p.file for p in found.partitions] == ["part-00000.parquet", "part-00001.parquet"]
    for entry in found.partitions:
        assert entry.sha256 == hashlib.sha256((tmp_path / entry.file).read_bytes()).hexdigest()
    assert found.segments["region"].labels() == ["emea", "na", "(missing)"]


@pytest.mark.parametrize(
    ("case", "data", "words"),
    [
        ("not JSON", b"\xff{", "not UTF-8 JSON"),
        ("another format", manifest(format="v0"), '"format" must be'),
        ("no partitions", manifest(partitions=[]), '"partitions" must list'),
        (
            "a part file outside the directory",
            manifest(partitions=[{"file": "../secret.parquet", "sha256": SHA, "rows": 1}]),
            "unique plain name",
        ),
        (
            "the same part twice",
            manifest(partitions=[{"file": "a.parquet", "sha256": SHA, "rows": 1}] * 2),
            "unique plain name",
        ),
        (
            "a hash that is not one",
            manifest(partitions=[{"file": "a.parquet", "sha256": "xyz", "rows": 1}]),
            "64 lowercase hex",
        ),
        (
            "a negative row count",
            manifest(partitions=[{"file": "a.parquet", "sha256": SHA, "rows": -1}]),
            "rows must be a count",
        ),
        (
            "unsorted segment values",
            manifest(segments={"region": {"values": ["na", "emea"]}}),
            "sorted and distinct",
        ),
        ("no row id column", manifest(row_id_column=""), '"row_id_column"'),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else "",
)
def test_a_bad_manifest_is_refused_with_the_reason(case: str, data: bytes, words: str) -> None:
    with pytest.raises(DistributedError, match=r"manifest\.json is invalid") as caught:
        parse_manifest(data)
    assert words in str(caught.value), case


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("tcp://10.0.0.5:8786", "10.0.0.5:8786"),
        ("tls://user:secret@dask.internal:8786/path?token=abc", "dask.internal:8786"),
        ("dask.internal:8786", "dask.internal:8786"),
    ],
)
def test_messages_show_only_the_schedulers_host_and_port(address: str, shown: str) -> None:
    assert shown_address(address) == shown


@pytest.mark.parametrize("address", [None, "", "   "])
def test_no_scheduler_is_a_failure_that_says_how_to_configure_one(address: str | None) -> None:
    with pytest.raises(DistributedError, match="SHIPYARD_DASK_SCHEDULER"):
        require_scheduler(address)
