"""Remember which exact artifact bytes passed verification, so a repeat run skips re-verifying.

An entry says "bytes with this sha256 were verified safe, as this format, by this verifier
version with these onnx/skops versions"; the caller hashes the bytes on every run, so a changed
artifact misses. Only passes are stored: a refusal is always recomputed. Entries are written
atomically (a temporary file renamed into place). Standard library only: a hit means the worker
never imports onnx.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# Bump whenever loading.py's checks change what they accept: old passes then no longer count.
VERIFIER_VERSION = 1
_MAX_ENTRY_BYTES = 4096
_LIBRARIES = ("onnx", "skops")


def _library_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@dataclass(frozen=True)
class CachedPass:
    """What verification found for these bytes: the format and what was detected."""

    format: str
    detected: str


class VerdictCache:
    """Passes stored as small JSON files under `directory`, one per key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._versions = _library_versions()

    def _path(self, sha256: str) -> Path:
        spec = {"sha256": sha256, "verifier": VERIFIER_VERSION, "libraries": self._versions}
        key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        return self.directory / f"{key}.json"

    def get(self, sha256: str) -> CachedPass | None:
        """The pass recorded for these bytes, or None (absent, unreadable or malformed)."""
        try:
            with self._path(sha256).open("rb") as f:
                raw = f.read(_MAX_ENTRY_BYTES + 1)
            entry = json.loads(raw) if len(raw) <= _MAX_ENTRY_BYTES else None
            if not isinstance(entry, dict) or entry.get("sha256") != sha256:
                return None
            return CachedPass(str(entry["format"]), str(entry["detected"]))
        except (OSError, ValueError, KeyError):
            return None

    def put(self, sha256: str, verdict: CachedPass) -> None:
        """Record a pass; failing to write only means the next run verifies again."""
        entry = {"sha256": sha256, "format": verdict.format, "detected": verdict.detected}
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entry, f)
            os.replace(tmp, self._path(sha256))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/shipyard/verified, else ~/.cache/shipyard/verified (the CLI's cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shipyard" / "verified"


__all__ = ["VERIFIER_VERSION", "CachedPass", "VerdictCache", "default_cache_dir"]
