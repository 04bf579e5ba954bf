"""A partitioned benchmark: Parquet part files in one directory plus `manifest.json`, pinned.

The policy's `benchmark.sha256` pins the manifest's bytes; the manifest pins every partition's
sha256, so a worker verifies the partition it reads before using it. The manifest also fixes
each segment column's values (codes mean the same in every partition) and names the column of
global row ids (the bootstrap's weights are keyed by row id, not by position in a partition).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evaluators.distributed.errors import DistributedError

MANIFEST_NAME = "manifest.json"
FORMAT = "shipyard-partitioned-benchmark/1"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_PARTITIONS = 100_000
MAX_SEGMENT_VALUES = 10_000
_PART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.parquet$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class PartitionEntry:
    file: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class SegmentValues:
    """A segment column's values in sorted order; `missing`: some rows have none (a last
    segment, as the local engine lists it)."""

    values: tuple[str, ...]
    missing: bool

    def labels(self) -> list[str]:
        from evaluators.statistics.segments import MISSING_LABEL

        return [*self.values, *([MISSING_LABEL] if self.missing else [])]


@dataclass(frozen=True)
class Manifest:
    row_id_column: str
    partitions: tuple[PartitionEntry, ...]
    segments: dict[str, SegmentValues]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)


def _fail(why: str) -> DistributedError:
    return DistributedError(f"the partitioned benchmark's {MANIFEST_NAME} is invalid: {why}")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise _fail(f"{what} must be a non-empty string of at most 200 characters")
    return value


def parse_manifest(data: bytes) -> Manifest:
    """The manifest, checked: bounded sizes, simple part names, well-formed hashes."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise _fail(f"larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MB")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _fail("not UTF-8 JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _fail(f'"format" must be "{FORMAT}"')
    parts = doc.get("partitions")
    if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_PARTITIONS:
        raise _fail(f'"partitions" must list 1 to {MAX_PARTITIONS:,} part files')
    entries, seen = [], set()
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise _fail(f"partition {i} is not an object")
        name, sha, rows = part.get("file"), part.get("sha256"), part.get("rows")
        if not isinstance(name, str) or not _PART_NAME.match(name) or name in seen:
            raise _fail(f"partition {i}: file must be a unique plain name ending .parquet")
        if not isinstance(sha, str) or not _SHA.match(sha):
            raise _fail(f"partition {i}: sha256 must be 64 lowercase hex digits")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise _fail(f"partition {i}: rows must be a count")
        seen.add(name)
        entries.append(PartitionEntry(name, sha, rows))
    segments = {}
    raw_segments = doc.get("segments", {})
    if not isinstance(raw_segments, dict):
        raise _fail('"segments" must map column names to their values')
    for column, spec in raw_segments.items():
        values = spec.get("values") if isinstance(spec, dict) else None
        if not isinstance(values, list) or len(values) > MAX_SEGMENT_VALUES:
            raise _fail(f"segment column {column[:50]}: values must be a list (≤ 10,000)")
        texts = [_text(v, f"a value of segment column {column[:50]}") for v in values]
        if texts != sorted(set(texts)):
            raise _fail(f"segment column {column[:50]}: values must be sorted and distinct")
        segments[_text(column, "a segment column")] = SegmentValues(
            tuple(texts), bool(spec.get("missing", False))
        )
    return Manifest(
        row_id_column=_text(doc.get("row_id_column"), '"row_id_column"'),
        partitions=tuple(entries),
        segments=segments,
    )


def write_partitioned(
    frames: Iterable[pd.DataFrame],
    directory: Path,
    *,
    row_id_column: str,
    segment_columns: list[str],
) -> str:
    """Write each frame as a part file and the manifest; returns the manifest's sha256 (the
    policy's pin). Frames come one at a time, so a large benchmark is never whole in memory."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    values: dict[str, set[str]] = {c: set() for c in segment_columns}
    missing = dict.fromkeys(segment_columns, False)
    for i, frame in enumerate(frames):
        name = f"part-{i:05d}.parquet"
        path = directory / name
        frame.to_parquet(path, index=False)
        entries.append(
            {
                "file": name,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "rows": len(frame),
            }
        )
        for column in segment_columns:
            col = frame[column]
            missing[column] |= bool(col.isna().any())
            values[column].update(str(v) for v in col.dropna().unique())
    doc = {
        "format": FORMAT,
        "row_id_column": row_id_column,
        "partitions": entries,
        "segments": {
            c: {"values": sorted(values[c]), "missing": missing[c]} for c in segment_columns
        },
    }
    data = json.dumps(doc, indent=1).encode()
    (directory / MANIFEST_NAME).write_bytes(data)
    return hashlib.sha256(data).hexdigest()
