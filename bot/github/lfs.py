"""Git LFS: recognise pointer files and fetch their objects through the batch API, verified."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

import httpx

from bot.base.tls import shared_tls

LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
POINTER_MAX_BYTES = 1024  # the spec requires pointer files to be smaller than this
_POINTER = re.compile(
    rb"\Aversion https://git-lfs\.github\.com/spec/v1\n"
    rb"(?:[a-z0-9.-]+ [^\n]*\n)*?"
    rb"oid sha256:(?P<oid>[0-9a-f]{64})\n"
    rb"size (?P<size>[0-9]+)\n"
    rb"(?:[a-z0-9.-]+ [^\n]*\n)*\Z"
)


@dataclass(frozen=True)
class LfsPointer:
    oid: str
    size: int


class LfsError(Exception):
    """An LFS object could not be fetched or did not match its pointer."""


def parse_pointer(data: bytes) -> LfsPointer | None:
    """The pointer in `data`, or None when the file is not an LFS pointer."""
    if len(data) >= POINTER_MAX_BYTES or not data.startswith(b"version https://git-lfs"):
        return None
    match = _POINTER.match(data)
    if match is None:
        return None
    return LfsPointer(oid=match["oid"].decode(), size=int(match["size"]))


def lfs_endpoint(clone_url: str) -> str:
    """Where git-lfs would look for a repository: `<clone url>/info/lfs`."""
    url = clone_url.rstrip("/")
    if not url.endswith(".git"):
        url += ".git"
    return url + "/info/lfs"


def fetch_objects(
    *,
    endpoint: str,
    token: str,
    pointers: list[LfsPointer],
    max_bytes: int = 2 * 1024**3,
    timeout_s: float = 120,
) -> dict[str, bytes]:
    """Download every object, checking sha256 and size; raises LfsError naming the object."""
    if not pointers:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    headers = {
        "Accept": LFS_MEDIA_TYPE,
        "Content-Type": LFS_MEDIA_TYPE,
        "Authorization": f"Basic {basic}",
    }
    request = {
        "operation": "download",
        "transfers": ["basic"],
        "objects": [{"oid": p.oid, "size": p.size} for p in pointers],
        "hash_algo": "sha256",
    }
    out: dict[str, bytes] = {}
    with httpx.Client(timeout=timeout_s, verify=shared_tls()) as http:
        response = http.post(f"{endpoint}/objects/batch", json=request, headers=headers)
        if response.status_code != 200:
            raise LfsError(f"LFS batch request failed with HTTP {response.status_code}")
        wanted = {p.oid: p for p in pointers}
        for obj in response.json().get("objects", []):
            oid = str(obj.get("oid"))
            pointer = wanted.get(oid)
            if pointer is None:
                continue
            if "error" in obj:
                message = obj["error"].get("message", "unavailable")
                raise LfsError(f"LFS object {oid[:12]}… is not available: {message}")
            download = obj.get("actions", {}).get("download")
            if not download:
                raise LfsError(f"LFS object {oid[:12]}… has no download action")
            out[oid] = _download(http, download, pointer, max_bytes)
    missing = [p.oid for p in pointers if p.oid not in out]
    if missing:
        raise LfsError(f"LFS server did not return object {missing[0][:12]}…")
    return out


def _download(
    http: httpx.Client, action: dict[str, object], pointer: LfsPointer, max_bytes: int
) -> bytes:
    if pointer.size > max_bytes:
        raise LfsError(f"LFS object {pointer.oid[:12]}… is {pointer.size} bytes, over the limit")
    href = str(action["href"])
    extra = action.get("header")
    headers = {str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {}
    digest = hashlib.sha256()
    chunks = []
    received = 0
    with http.stream("GET", href, headers=headers) as response:
        if response.status_code != 200:
            raise LfsError(
                f"LFS download of {pointer.oid[:12]}… failed with HTTP {response.status_code}"
            )
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > pointer.size:
                raise LfsError(f"LFS object {pointer.oid[:12]}… is larger than its pointer says")
            digest.update(chunk)
            chunks.append(chunk)
    if received != pointer.size:
        raise LfsError(
            f"LFS object {pointer.oid[:12]}… has {received} bytes, pointer says {pointer.size}"
        )
    if digest.hexdigest() != pointer.oid:
        raise LfsError(
            f"LFS object {pointer.oid[:12]}… does not match its sha256 "
            f"(got {digest.hexdigest()[:12]}…)"
        )
    return b"".join(chunks)
