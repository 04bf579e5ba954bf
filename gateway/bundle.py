"""A model bundle's identity: the files the gateway serves from (config.yaml and weights/) and
one canonical sha256 over them, independent of file order, timestamps or the filesystem."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

CONFIG_FILE = "config.yaml"
WEIGHTS_DIR = "weights"
MAX_FILES = 256  # a model bundle is a config and a few weight files, never a data dump


class BundleError(ValueError):
    """The directory is not a servable bundle; the message says why."""


def bundle_files(root: Path) -> list[PurePosixPath]:
    """config.yaml and every file under weights/, as sorted relative POSIX paths."""
    if not (root / CONFIG_FILE).is_file():
        raise BundleError("the model directory has no config.yaml")
    found = [PurePosixPath(CONFIG_FILE)]
    weights = root / WEIGHTS_DIR
    if not weights.is_dir() or weights.is_symlink():
        raise BundleError("the model directory has no weights/ directory")
    for path in sorted(weights.rglob("*")):
        if path.is_symlink():
            raise BundleError("the model directory holds a symbolic link")
        if path.is_file():
            found.append(PurePosixPath(path.relative_to(root).as_posix()))
        if len(found) > MAX_FILES:
            raise BundleError(f"the model directory holds more than {MAX_FILES} files")
    return sorted(found)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def digest_of(entries: dict[str, str]) -> str:
    """The bundle digest from {relative path: file sha256}: one line per file, sorted by path."""
    lines = "".join(f"{entries[name]}  {name}\n" for name in sorted(entries))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def bundle_digest(root: Path) -> tuple[str, dict[str, str]]:
    """(bundle sha256, {relative path: file sha256}) of the bundle in `root`."""
    entries = {str(rel): file_digest(root / rel) for rel in bundle_files(root)}
    return digest_of(entries), entries
