"""Load the pinned benchmark: fetch the bytes, check the sha256 pin, then parse and check columns.

Sources: a local path (relative to the registry checkout), file://, http(s):// (streamed with a
size cap, hashed while streaming) or any fsspec URI (s3://, gs:// need the matching extra).
Nothing is parsed before the bytes match the pin.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from evaluators.policy import BenchmarkPolicy

DEFAULT_MAX_BYTES = 4 * 1024**3
_CHUNK = 1024 * 1024
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


class BenchmarkError(ValueError):
    """The benchmark cannot be used; the message says which check failed."""


@dataclass(frozen=True)
class BenchmarkData:
    frame: pd.DataFrame
    sha256: str
    rows: int
    uri: str


def _read_capped(chunks: Iterator[bytes], *, uri: str, max_bytes: int) -> tuple[bytes, str]:
    """All bytes and their sha256, refusing more than `max_bytes`."""
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    for chunk in chunks:
        digest.update(chunk)
        buffer.write(chunk)
        if buffer.tell() > max_bytes:
            raise BenchmarkError(f"benchmark {uri} is larger than the {max_bytes:,}-byte limit")
    return buffer.getvalue(), digest.hexdigest()


def _file_chunks(path: Path, uri: str) -> Iterator[bytes]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise BenchmarkError(f"benchmark file not found: {uri} (looked at {path})") from None
    except OSError as exc:
        raise BenchmarkError(f"benchmark {uri} cannot be read: {exc.strerror}") from None
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _http_chunks(uri: str, *, timeout_s: float) -> Iterator[bytes]:
    import httpx

    try:
        with httpx.stream("GET", uri, follow_redirects=True, timeout=timeout_s) as response:
            if response.status_code != 200:
                raise BenchmarkError(
                    f"benchmark download {uri} failed: HTTP {response.status_code}"
                )
            yield from response.iter_bytes(_CHUNK)
    except httpx.HTTPError as exc:
        raise BenchmarkError(f"benchmark download {uri} failed: {type(exc).__name__}") from None


def _fsspec_chunks(uri: str, scheme: str) -> Iterator[bytes]:
    import fsspec

    try:
        opened = fsspec.open(uri, "rb")
    except ImportError:
        extra = _EXTRAS.get(scheme, scheme)
        raise BenchmarkError(
            f"benchmark {uri} needs fsspec support for {scheme}://; "
            f"install it with: pip install 'shipyard[{extra}]'"
        ) from None
    except ValueError as exc:
        raise BenchmarkError(f"benchmark URI scheme {scheme}:// is not supported ({exc})") from None
    try:
        with opened as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk
    except FileNotFoundError:
        raise BenchmarkError(f"benchmark not found: {uri}") from None


def _chunks(uri: str, *, base_dir: Path | None, timeout_s: float) -> Iterator[bytes]:
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return _http_chunks(uri, timeout_s=timeout_s)
    if scheme == "file":
        return _file_chunks(Path(unquote(parsed.path)), uri)
    if scheme and len(scheme) > 1:  # a one-letter scheme is a Windows drive
        return _fsspec_chunks(uri, scheme)
    path = Path(uri)
    if not path.is_absolute():
        if base_dir is None:
            raise BenchmarkError(f"benchmark path {uri} is relative but no base directory is set")
        path = base_dir / path
    return _file_chunks(path, uri)


def _parse(data: bytes, uri: str) -> pd.DataFrame:
    """Parquet by magic bytes or extension, else CSV."""
    name = urlparse(uri).path.lower()
    is_parquet = data[:4] == b"PAR1" or name.endswith((".parquet", ".pq"))
    try:
        if is_parquet:
            return pd.read_parquet(io.BytesIO(data))
        compression = "gzip" if data[:2] == b"\x1f\x8b" else None
        return pd.read_csv(io.BytesIO(data), compression=compression)
    except Exception as exc:
        kind = "Parquet" if is_parquet else "CSV"
        raise BenchmarkError(f"benchmark {uri} is not readable as {kind}: {exc}") from None


def _check_columns(frame: pd.DataFrame, policy: BenchmarkPolicy) -> None:
    wanted = [policy.label_column, *policy.segment_columns]
    if policy.id_column:
        wanted.append(policy.id_column)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise BenchmarkError(
            f"benchmark lacks column(s) {', '.join(missing)} named in .shipyard.yml; "
            f"it has: {', '.join(map(str, frame.columns))}"
        )


def load_benchmark(
    *,
    policy: BenchmarkPolicy,
    base_dir: Path | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_s: float = 300.0,
) -> BenchmarkData:
    """Fetch, verify the sha256 pin, parse, and check the policy's columns exist."""
    chunks = _chunks(policy.uri, base_dir=base_dir, timeout_s=timeout_s)
    data, sha = _read_capped(chunks, uri=policy.uri, max_bytes=max_bytes)
    if sha != policy.sha256:
        raise BenchmarkError(
            f"benchmark {policy.uri} does not match its pin: sha256 is {sha}, "
            f".shipyard.yml pins {policy.sha256}"
        )
    frame = _parse(data, policy.uri)
    _check_columns(frame, policy)
    if policy.id_column:
        frame[policy.id_column] = frame[policy.id_column].astype("string")
    for column in policy.segment_columns:
        frame[column] = frame[column].astype("string")
    return BenchmarkData(frame=frame, sha256=sha, rows=len(frame), uri=policy.uri)


__all__ = ["DEFAULT_MAX_BYTES", "BenchmarkData", "BenchmarkError", "load_benchmark"]
