"""A benchmark whole (one pinned Parquet file) and in 1, 3 and 7 partitions of uneven sizes,
for the tests that check the dask engine against the local one whatever the partitioning."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluators.distributed.manifest import write_partitioned

SEGMENTS = ["entity_type", "industry", "region"]


def partitioned(frame: pd.DataFrame, bounds: list[int], directory: Path) -> str:
    """Rows [bounds[i], bounds[i + 1]) as partition i (row id column `row_id`); the manifest's
    sha256."""
    return write_partitioned(
        (frame.iloc[a:b] for a, b in itertools.pairwise(bounds)),
        directory,
        row_id_column="row_id",
        segment_columns=SEGMENTS,
    )


def uneven_partitions(frame: pd.DataFrame, root: Path, *, seed: int) -> dict[Any, Any]:
    """{"whole": (file, sha256), 1 | 3 | 7: (directory, manifest sha256)}."""
    whole = root / "whole.parquet"
    frame.to_parquet(whole, index=False)
    found: dict[Any, Any] = {"whole": (whole, hashlib.sha256(whole.read_bytes()).hexdigest())}
    rng = np.random.default_rng(seed)
    for parts in (1, 3, 7):
        cuts = np.sort(rng.choice(np.arange(1, len(frame)), parts - 1, replace=False))
        directory = root / f"parts-{parts}"
        found[parts] = (directory, partitioned(frame, [0, *cuts.tolist(), len(frame)], directory))
    return found
