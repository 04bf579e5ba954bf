"""The benchmark's features read with pyarrow alone, before pandas and the statistics import.

`shipyard evaluate` hands them to its worker at once, so scoring and latency run while the
command imports and parses (about half a second of its critical path). Only a local Parquet
benchmark that matches its sha256 pin is read; anything else gives None and the evaluation reads
the benchmark as it always does. This is only a head start: the evaluation still sends the
features it computes itself, and the worker scores again unless they are identical
(`ModelWorker.send_features`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from evaluators.artifacts.benchmark_data import (
    BenchmarkError,
    local_path,
    read_capped,
    read_chunks,
    scheme_of,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from numpy.typing import NDArray

    from evaluators.policy import BenchmarkPolicy


# Above this the file is read twice for a head start of half a second: not worth it.
MAX_EARLY_BYTES = 256 * 1024**2


def early_features(
    policy: BenchmarkPolicy,
    *,
    base_dir: Path | None,
    features: Mapping[str, list[str]],
    max_bytes: int = MAX_EARLY_BYTES,
) -> dict[str, NDArray[np.float32]] | None:
    """Each role's feature matrix (config order, float32), or None when not simply readable."""
    if scheme_of(policy.uri) not in ("", "file"):
        return None
    try:
        if local_path(policy.uri, base_dir).stat().st_size > max_bytes:
            return None
        chunks = read_chunks(policy.uri, base_dir=base_dir, timeout_s=60.0)
        data, sha = read_capped(chunks, uri=policy.uri, max_bytes=max_bytes)
    except (BenchmarkError, OSError):
        return None
    if sha != policy.sha256 or data[:4] != b"PAR1":
        return None  # the evaluation reads it again and says what is wrong
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = sorted({name for names in features.values() for name in names})
    try:
        # Not the dataset API: that one imports pandas, which this read is to run before. An
        # Arrow buffer, not a Python file object: see benchmark_data.parquet_frame.
        table = pq.ParquetFile(pa.BufferReader(data)).read(columns=wanted)
    except Exception:  # missing columns, a damaged file: the evaluation explains it
        return None
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if len(table.column_names) != len(wanted) or not all(
        any(kind(table.schema.field(name).type) for kind in numeric) for name in wanted
    ):
        return None
    columns = {name: _values(table.column(name)) for name in wanted}
    if any(values is None for values in columns.values()):
        return None
    matrices: dict[str, NDArray[np.float32]] = {}
    for role, names in features.items():
        x = np.empty((table.num_rows, len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            x[:, j] = columns[name]
        matrices[role] = x
    return matrices


_FLOATS = {"double": "float64", "float": "float32", "halffloat": "float16"}


def _values(column: pa.ChunkedArray) -> NDArray[np.float32] | None:
    """A numeric column as float32 with nulls as NaN (as pandas reads it), straight from the
    Arrow buffers: pyarrow's own `to_numpy` imports pandas, which is what this runs before."""
    import numpy as np

    dtype = np.dtype(_FLOATS.get(str(column.type), str(column.type)))
    parts = []
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        validity, data = chunk.buffers()[:2]
        if data is None:
            return None
        values = np.frombuffer(
            data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize
        ).astype(np.float32)
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
            values[~bits[chunk.offset : chunk.offset + len(chunk)].astype(bool)] = np.nan
        parts.append(values)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)


__all__ = ["early_features"]
