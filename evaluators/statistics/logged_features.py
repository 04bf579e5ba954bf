"""Feature values out of the prediction log's `features` column (JSON text per request).

Parsing every row's JSON is the slow part of shadow analysis (a logged row is ~0.5 KB: 1M
rows is 0.5 GB of JSON), so neither function does it:
- segment values, needed for every paired request, are cut out by one RE2 scan per segment
  column (pyarrow's `extract_regex`, linear time): a flat `"column": "value"` (or a bare
  number / true / false) pair; values with escapes or over 200 characters count as missing;
- drift is estimated on a uniform random sample of requests (default 50,000), parsed by
  pyarrow's JSON reader. PSI's sampling bias is about (bins - 1) / rows, 2e-4 for 10 bins at
  50,000 rows, far below any threshold worth setting.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from evaluators.statistics.drift import NumericProfile, ReferenceProfile

DRIFT_SAMPLE_ROWS = 50_000
MAX_SEGMENT_VALUE = 200
_COLUMN_NAME = re.compile(r"^[A-Za-z0-9_.\- ]{1,100}$")


def _as_arrow(features: pd.Series[Any]) -> pa.Array:
    array = pa.array(features, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.large_string())
    return array


def segment_values(features: pd.Series[Any], columns: list[str]) -> pd.DataFrame:
    """One column of string values (None when absent) per segment column, row for row."""
    array = _as_arrow(features)
    out: dict[str, Any] = {}
    for column in columns:
        if not _COLUMN_NAME.match(column):
            raise ValueError(f"segment column name {column[:40]!r} is not a plain name")
        key = re.escape(json.dumps(column))
        pattern = (
            f'{key}\\s*:\\s*(?:"(?P<text>[^"\\\\]{{0,{MAX_SEGMENT_VALUE}}})"'
            r"|(?P<bare>-?[0-9][0-9.eE+\-]{0,40}|true|false))\s*[,}]"
        )
        found = pc.extract_regex(array, pattern)
        text = found.field("text")
        bare = found.field("bare")
        # extract_regex leaves an unmatched group empty: text wins if matched, else bare.
        value = pc.if_else(
            pc.and_(pc.is_valid(text), pc.not_equal(pc.utf8_length(text), 0)),
            text,
            pc.if_else(pc.not_equal(pc.utf8_length(bare), 0), bare, None),
        )
        if pc.any(pc.and_(pc.is_valid(found), pc.is_null(value))).as_py():
            # `"column": ""` matched with an empty text: an empty string is a value.
            value = pc.if_else(pc.is_valid(found), pc.fill_null(value, ""), None)
        out[column] = value.to_pandas()
    return pd.DataFrame(out, index=features.index)


def _schema(profile: ReferenceProfile) -> pa.Schema:
    return pa.schema(
        [
            (name, pa.float64() if isinstance(spec, NumericProfile) else pa.string())
            for name, spec in profile.features.items()
        ]
    )


def _category(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return None
    return str(value)


def _parse_slow(texts: list[Any], profile: ReferenceProfile) -> pd.DataFrame:
    rows = []
    for text in texts:
        try:
            row = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            row = {}
        rows.append(row if isinstance(row, dict) else {})
    frame = pd.DataFrame.from_records(rows, columns=list(profile.features))
    for name, spec in profile.features.items():
        if isinstance(spec, NumericProfile):
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        else:
            frame[name] = frame[name].map(_category)
    return frame


def sample_features(
    features: pd.Series[Any],
    profile: ReferenceProfile,
    *,
    max_rows: int = DRIFT_SAMPLE_ROWS,
    seed: int = 0,
) -> pd.DataFrame:
    """The profiled features of a uniform random sample of at most `max_rows` requests
    (all of them when there are fewer). A row that is not a JSON object counts as all-missing."""
    n = len(features)
    if n > max_rows:
        chosen = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
        features = features.iloc[chosen]
    array = _as_arrow(features)
    array = pc.fill_null(array, "{}")
    # Raw newlines can only be whitespace between tokens in valid JSON: one object per line.
    lines = pc.replace_substring(array, "\n", " ")
    joined = pc.binary_join_element_wise(
        lines, pa.scalar("\n", lines.type), pa.scalar("", lines.type)
    )
    options = pa_json.ParseOptions(
        explicit_schema=_schema(profile), unexpected_field_behavior="ignore"
    )
    try:
        offsets = np.frombuffer(joined.buffers()[1], dtype=_offset_dtype(joined))
        start, end = int(offsets[joined.offset]), int(offsets[joined.offset + len(joined)])
        data = joined.buffers()[2][start:end]
        table = pa_json.read_json(pa.BufferReader(data), parse_options=options)
        if table.num_rows != len(features):
            raise ValueError("row count changed while parsing")
        frame = table.to_pandas()
    except (pa.ArrowInvalid, ValueError):
        # A malformed row or a mistyped value spoils a whole block for pyarrow: parse one by one.
        frame = _parse_slow(features.tolist(), profile)
    frame.index = features.index
    return frame


def _offset_dtype(array: pa.Array) -> type[np.integer[Any]]:
    return np.int64 if pa.types.is_large_string(array.type) else np.int32
