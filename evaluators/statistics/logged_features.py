"""Feature values out of the prediction log's `features` column (JSON text per request).

Parsing every row's JSON is the slow part of shadow analysis (a logged row is ~0.5 KB: 1M
rows is 0.5 GB of JSON), so neither function does it:
- segment values, needed for every paired request, are cut out per segment column by a
  substring search for the quoted key and an anchored RE2 match right after it (pyarrow
  kernels, no per-row Python); the few rows this cannot read (escapes, odd layout) are parsed
  with json.loads, so the value is what JSON says for a flat object (the gateway's format;
  a nested object holding the same key before the top-level one would be misread);
- drift is estimated on a uniform random sample of requests (default 50,000), parsed by
  pyarrow's JSON reader. PSI's sampling bias is about (bins - 1) / rows, 2e-4 for 10 bins at
  50,000 rows, far below any threshold worth setting.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from evaluators.statistics.drift import NumericProfile, ReferenceProfile

DRIFT_SAMPLE_ROWS = 50_000
MAX_SEGMENT_VALUE = 200
# After a segment column's key: `:` and a string without escapes (quotes kept, so an empty
# string differs from no match) or a bare scalar, then the end of the pair.
_VALUE_PATTERN = (
    r'^\s*:\s*(?:(?P<text>"[^"\\]{0,' + str(MAX_SEGMENT_VALUE) + r'}")'
    r"|(?P<bare>-?[0-9][0-9.eE+\-]{0,40}|true|false|null))\s*[,}]"
)


def _as_arrow(features: pd.Series[Any]) -> pa.Array:
    array = pa.array(features, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.large_string())
    return array


def _string_offsets(array: pa.Array) -> npt.NDArray[np.int64]:
    """Row offsets (n + 1) into the data buffer of a (large) string array."""
    dtype = np.int64 if pa.types.is_large_string(array.type) else np.int32
    raw = np.frombuffer(array.buffers()[1], dtype=dtype)
    return raw[array.offset : array.offset + len(array) + 1].astype(np.int64)


def _slow_value(text: Any, column: str) -> str | None:
    """One row the fast path could not read, parsed properly."""
    try:
        row = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(row, dict) or row.get(column) is None:
        return None
    value = row[column]
    if isinstance(value, str):
        return value if len(value) <= MAX_SEGMENT_VALUE else None
    return json.dumps(value) if isinstance(value, int | float | bool) else None


def segment_codes(features: pd.Series[Any], column: str) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Each row's value of `column` in the logged features JSON, as codes into sorted labels
    (-1: absent, null, not a scalar, or longer than MAX_SEGMENT_VALUE characters).

    Fast path, vectorised over rows: find `"column"` (a quoted key cannot occur inside a JSON
    string, whose quotes are escaped), expect `:`, then read a string without escapes or a bare
    scalar. Rows where that expectation fails (escapes, odd layout, the name used as a value)
    are parsed one by one with json.loads, so the result is what JSON says for a flat object.
    """
    array = _as_arrow(features)
    n = len(array)
    offsets = _string_offsets(array)
    key = json.dumps(column)
    position = pc.find_substring(array, key).fill_null(-1).to_numpy(zero_copy_only=False)
    position = np.asarray(position, dtype=np.int64)
    has_key = position >= 0
    # One string per row starting right after the key, without copying: the same bytes with
    # new offsets, each running up to where the next row's string starts (a row without the
    # key starts at its end, so it begins with the next row's `{` and cannot match). The
    # pattern ends at the `,` or `}` after the value, inside the row for any JSON object.
    after = np.where(has_key, offsets[:-1] + position + len(key.encode()), offsets[1:])
    bounds = np.append(after, max(int(offsets[n]), int(after[-1]) if n else 0))
    rests = pa.LargeStringArray.from_buffers(n, pa.py_buffer(bounds), array.buffers()[2])
    # Anchored: RE2 stops at the first byte that cannot match, so long rows cost nothing more.
    match = pc.extract_regex(rests, _VALUE_PATTERN)
    text = match.field("text")
    bare = match.field("bare")
    matched = np.asarray(match.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    slow_rows = np.flatnonzero(has_key & ~matched)
    quoted = matched & np.asarray(
        pc.greater(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False), dtype=bool
    )
    is_null = (
        matched
        & ~quoted
        & np.asarray(pc.equal(bare, "null").to_numpy(zero_copy_only=False), dtype=bool)
    )
    values = pc.if_else(pa.array(quoted), pc.utf8_slice_codeunits(text, 1, -1), bare)
    fast = matched & ~is_null
    encoded = pc.dictionary_encode(values)
    dictionary = [str(label) for label in encoded.dictionary.to_pylist()]
    fast_index = np.asarray(
        encoded.indices.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    slow_values = [_slow_value(features.iloc[row], column) for row in slow_rows]
    used = [dictionary[i] for i in np.unique(fast_index[fast])]
    labels = sorted({*used, *(v for v in slow_values if v is not None)})
    code_of = {label: code for code, label in enumerate(labels)}
    codes = np.full(n, -1, dtype=np.int64)
    translate = np.array([code_of.get(label, -1) for label in dictionary], dtype=np.int64)
    if dictionary:
        codes[fast] = translate[fast_index[fast]]
    codes[slow_rows] = [code_of[v] if v is not None else -1 for v in slow_values]
    return codes, labels


def segment_values(features: pd.Series[Any], columns: list[str]) -> pd.DataFrame:
    """One column of string values (None when absent) per segment column, row for row."""
    out: dict[str, Any] = {}
    for column in columns:
        codes, labels = segment_codes(features, column)
        lookup = np.array([*labels, None], dtype=object)
        out[column] = lookup[codes]
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


SCHEMA_SAMPLE_ROWS = 200
MAX_SCHEMA_COLUMNS = 1000
# The gateway marks a row's context columns (a request's `shipyard_context`, logged but never
# fed to the model) with this key: a list of their names (gateway/protocol.py CONTEXT_PARAMETER;
# evaluators may not import the gateway, tests/test_gateway_context.py checks they agree).
CONTEXT_MARKER = "shipyard_context"


def _sampled_rows(features: pd.Series[Any], max_rows: int) -> list[dict[Any, Any]]:
    """Up to `max_rows` rows spread over the window, parsed; rows that are not objects skipped."""
    n = len(features)
    if n == 0:
        return []
    chosen = np.unique(np.linspace(0, n - 1, num=min(n, max_rows)).astype(np.int64))
    rows = []
    for text in features.iloc[chosen]:
        try:
            row = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _context_names(row: dict[Any, Any]) -> list[str]:
    marker = row.get(CONTEXT_MARKER)
    if not isinstance(marker, list):
        return []  # absent, or a model feature that happens to bear the name
    return [name for name in marker if isinstance(name, str) and name in row]


def logged_schema(
    features: pd.Series[Any], *, max_rows: int = SCHEMA_SAMPLE_ROWS
) -> dict[str, str]:
    """The columns requests arrived with (name → "float64" or "object"), read from up to
    `max_rows` rows spread over the window: what `sample_features` cannot tell (it reads only
    the profiled names, as the profile types them). A name is numeric when every non-null value
    seen is a number. Context columns are included (see `logged_context`); their marker is not."""
    kinds: dict[str, str] = {}
    for row in _sampled_rows(features, max_rows):
        marked = bool(_context_names(row))
        for name, value in row.items():
            if marked and name == CONTEXT_MARKER:
                continue
            key = str(name)[:MAX_SEGMENT_VALUE]
            if key not in kinds and len(kinds) >= MAX_SCHEMA_COLUMNS:
                continue
            if value is None:
                kinds.setdefault(key, "float64")
                continue
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            kinds[key] = (
                "float64" if numeric and kinds.get(key, "float64") == "float64" else "object"
            )
    return kinds


def logged_context(features: pd.Series[Any], *, max_rows: int = SCHEMA_SAMPLE_ROWS) -> list[str]:
    """The names the gateway logged as request context (not model features) in the same rows
    `logged_schema` reads, sorted: monitoring does not count them as columns the model gained."""
    names: set[str] = set()
    for row in _sampled_rows(features, max_rows):
        for name in _context_names(row):
            if len(names) < MAX_SCHEMA_COLUMNS:
                names.add(name[:MAX_SEGMENT_VALUE])
    return sorted(names)


def _offset_dtype(array: pa.Array) -> type[np.integer[Any]]:
    return np.int64 if pa.types.is_large_string(array.type) else np.int32
