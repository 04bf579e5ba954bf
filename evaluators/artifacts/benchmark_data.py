"""Load the pinned benchmark: fetch the bytes, check the sha256 pin, then parse and check columns.

Sources: a local path (relative to the registry checkout), file://, http(s):// (streamed with a
size cap, hashed while streaming) or any fsspec URI (s3://, gs:// need the matching extra).
Nothing is parsed before the bytes match the pin.

The URI comes from the registry, the allowed locations from the operator: with `roots` set (as
the bot always sets them) a URI outside every root is refused before any I/O, see
`check_location`. Messages never echo the content, columns or hash of a file that was not a
valid benchmark: the URI might point at a secret.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from evaluators.policy import BenchmarkPolicy

if TYPE_CHECKING:  # pandas is imported to parse: `shipyard evaluate` reads features before it
    import pandas as pd

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


def read_capped(chunks: Iterator[bytes], *, uri: str, max_bytes: int) -> tuple[bytes, str]:
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
        raise BenchmarkError(f"benchmark file not found: {uri}") from None
    except OSError as exc:
        raise BenchmarkError(f"benchmark {uri} cannot be read: {exc.strerror}") from None
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _http_chunks(uri: str, *, timeout_s: float) -> Iterator[bytes]:
    import httpx

    try:
        with httpx.stream("GET", uri, follow_redirects=False, timeout=timeout_s) as response:
            if response.is_redirect:  # the target would escape the roots checked before
                raise BenchmarkError(
                    f"benchmark download {uri} answered with a redirect "
                    f"(HTTP {response.status_code}); redirects are not followed"
                )
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


def local_path(uri: str, base_dir: Path | None) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme.lower() == "file":
        return Path(unquote(parsed.path))
    path = Path(uri)
    if not path.is_absolute():
        if base_dir is None:
            raise BenchmarkError(f"benchmark path {uri} is relative but no base directory is set")
        path = base_dir / path
    return path


def scheme_of(uri: str) -> str:
    scheme = urlparse(uri).scheme.lower()
    return scheme if len(scheme) > 1 else ""  # a one-letter scheme is a Windows drive


def read_chunks(uri: str, *, base_dir: Path | None, timeout_s: float) -> Iterator[bytes]:
    scheme = scheme_of(uri)
    if scheme in ("http", "https"):
        return _http_chunks(uri, timeout_s=timeout_s)
    if scheme and scheme != "file":
        return _fsspec_chunks(uri, scheme)
    return _file_chunks(local_path(uri, base_dir), uri)


# -- where a benchmark may come from (the operator's SHIPYARD_BENCHMARK_ROOTS) ------------------

Resolver = Callable[[str], list[str]]


def _resolve_host(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        raise BenchmarkError(f"benchmark host {host} cannot be resolved") from None
    return sorted({str(info[4][0]) for info in infos})


def is_internal_address(address: str) -> bool:
    """Loopback, link-local (cloud metadata), private, multicast, reserved or unspecified."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url_parts(uri: str) -> tuple[str, str, int | None, str]:
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    try:
        port = parsed.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        raise BenchmarkError("the benchmark URI has an invalid port") from None
    return scheme, (parsed.hostname or "").lower(), port, parsed.path or "/"


def _dir_prefix(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def _dot_segments(path: str) -> bool:
    decoded = unquote(path)
    return "\\" in decoded or any(part in (".", "..") for part in decoded.split("/"))


def _check_http(uri: str, roots: Sequence[str], resolve: Resolver) -> None:
    parsed = urlparse(uri)
    if parsed.username is not None or parsed.password is not None:
        raise BenchmarkError("benchmark URLs with credentials in them are refused")
    scheme, host, port, path = _url_parts(uri)
    if not host or _dot_segments(path):
        raise _outside(uri)
    root_host = None
    for root in roots:
        if scheme_of(root) != scheme:
            continue
        _, r_host, r_port, r_path = _url_parts(root)
        if (r_host, r_port) == (host, port) and path.startswith(_dir_prefix(r_path)):
            root_host = r_host
            break
    if root_host is None:
        raise _outside(uri)
    # An operator who names an internal address or localhost in a root means it; a public name
    # that resolves inside the network (DNS rebinding, a typo) is refused.
    named = _is_ip_literal(root_host) or root_host == "localhost"
    addresses = [host] if _is_ip_literal(host) else resolve(host)
    if not named and any(is_internal_address(a) for a in addresses):
        raise BenchmarkError(
            f"benchmark host {host} resolves to an internal address; only a root that names "
            "the address itself may point inside the network"
        )


def _check_local(uri: str, base_dir: Path | None, roots: Sequence[str]) -> None:
    if scheme_of(uri) == "file":
        raise BenchmarkError(
            f"benchmark {uri}: file:// URIs are refused; name a path inside the operator's "
            "SHIPYARD_BENCHMARK_ROOTS instead; nothing was read"
        )
    path = local_path(uri, base_dir)
    # resolve() follows symlinks, so a link inside a root pointing outside it is outside.
    try:
        resolved = path.resolve()
    except (OSError, ValueError):  # a loop of links, a NUL byte
        raise _outside(uri) from None
    local_roots = [Path(r).resolve() for r in roots if not scheme_of(r)]
    if not any(resolved.is_relative_to(root) for root in local_roots):
        raise _outside(uri)


def _check_fsspec(uri: str, scheme: str, roots: Sequence[str]) -> None:
    if _dot_segments(urlparse(uri).path) or "::" in uri:
        raise _outside(uri)
    prefixes = [_dir_prefix(r) for r in roots if scheme_of(r) == scheme]
    if not any(uri.startswith(prefix) for prefix in prefixes):
        raise _outside(uri)


def _outside(uri: str) -> BenchmarkError:
    return BenchmarkError(
        f"benchmark {uri} is outside the locations this Shipyard may read benchmarks from "
        "(the operator's SHIPYARD_BENCHMARK_ROOTS); nothing was read"
    )


def check_location(
    uri: str,
    *,
    base_dir: Path | None,
    roots: Sequence[str],
    resolve: Resolver = _resolve_host,
) -> None:
    """Refuse, before reading anything, a benchmark URI outside every operator root.

    Roots are local directories, `https://host/path/` or `s3://bucket/prefix/` (any fsspec
    scheme). A local path must resolve (symlinks followed, `..` applied) inside a local root;
    a URL or object URI must start with a root of its scheme, without `.`/`..` segments; an
    http(s) host must not resolve to an internal address unless the root names it.
    """
    scheme = scheme_of(uri)
    if scheme in ("http", "https"):
        _check_http(uri, roots, resolve)
    elif scheme and scheme != "file":
        _check_fsspec(uri, scheme, roots)
    else:
        _check_local(uri, base_dir, roots)


def parquet_frame(data: bytes | memoryview) -> pd.DataFrame:
    """Parquet bytes as a frame, read through an Arrow buffer rather than a Python file object:
    with a file object, Arrow's threads may still close it after the read returns, and at
    interpreter exit that wants the GIL and aborts the process (apache/arrow#33975)."""
    import pandas as pd
    import pyarrow as pa

    return pd.read_parquet(pa.BufferReader(data))


def _parse(data: bytes, uri: str) -> pd.DataFrame:
    """Parquet by magic bytes or extension, else CSV."""
    import pandas as pd

    name = urlparse(uri).path.lower()
    is_parquet = data[:4] == b"PAR1" or name.endswith((".parquet", ".pq"))
    try:
        if is_parquet:
            return parquet_frame(data)
        compression = "gzip" if data[:2] == b"\x1f\x8b" else None
        return pd.read_csv(io.BytesIO(data), compression=compression)
    except Exception as exc:  # the message could quote the file: name only the error's type
        kind = "Parquet" if is_parquet else "CSV"
        raise BenchmarkError(
            f"benchmark {uri} is not readable as {kind} ({type(exc).__name__})"
        ) from None


def _check_columns(frame: pd.DataFrame, policy: BenchmarkPolicy) -> None:
    wanted = [policy.label_column, *policy.segment_columns]
    if policy.id_column:
        wanted.append(policy.id_column)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        # The policy's names only: the file's own columns are not echoed.
        raise BenchmarkError(
            f"benchmark lacks column(s) {', '.join(missing)} named in .shipyard.yml"
        )


def load_benchmark(
    *,
    policy: BenchmarkPolicy,
    base_dir: Path | None,
    roots: Sequence[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_s: float = 300.0,
) -> BenchmarkData:
    """Check the location, fetch, verify the sha256 pin, parse, check the policy's columns.

    `roots=None` trusts the caller (a person running `shipyard evaluate` on their own files);
    the bot always passes the operator's roots.
    """
    if roots is not None:
        check_location(policy.uri, base_dir=base_dir, roots=roots)
    chunks = read_chunks(policy.uri, base_dir=base_dir, timeout_s=timeout_s)
    data, sha = read_capped(chunks, uri=policy.uri, max_bytes=max_bytes)
    if sha != policy.sha256:
        # Not the file's own hash: a hash of a secret file confirms guesses about its content.
        raise BenchmarkError(
            f"benchmark {policy.uri} does not match the sha256 pin in .shipyard.yml "
            f"({policy.sha256}); nothing was parsed"
        )
    frame = _parse(data, policy.uri)
    _check_columns(frame, policy)
    if policy.id_column:
        frame[policy.id_column] = frame[policy.id_column].astype("string")
    for column in policy.segment_columns:
        frame[column] = frame[column].astype("string")
    return BenchmarkData(frame=frame, sha256=sha, rows=len(frame), uri=policy.uri)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "BenchmarkData",
    "BenchmarkError",
    "check_location",
    "is_internal_address",
    "load_benchmark",
]
