"""Content fingerprints: what exactly was evaluated, so approvals can bind to it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from evaluators.policy import Policy, policy_sha256
from evaluators.report import Fingerprint

# Part of the hashed document, so a future change of layout cannot collide with this one.
FINGERPRINT_SCHEMA = "shipyard.fingerprint/1"
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (a symlink given here is followed: its target was loaded)."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _entries(root: Path, relative: bytes) -> Iterator[tuple[bytes, bytes, str]]:
    """(kind, relative path, digest) for everything under `root`, depth first, unsorted."""
    with os.scandir(root) as listing:
        for entry in listing:
            rel = relative + os.fsencode(entry.name)
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                target = os.fsencode(os.readlink(entry.path))
                yield b"link", rel, hashlib.sha256(target).hexdigest()
            elif stat.S_ISDIR(info.st_mode):
                # Directories are entries too, so an added empty directory changes the hash.
                yield b"dir", rel, ""
                yield from _entries(Path(entry.path), rel + b"/")
            elif stat.S_ISREG(info.st_mode):
                yield b"file", rel, file_sha256(Path(entry.path))
            else:
                # Reading a FIFO or device would block or be meaningless: refuse instead.
                raise ValueError(f"{entry.path}: not a regular file, directory or symlink")


def _records_sha256(records: Iterable[tuple[bytes, bytes, str]]) -> str:
    digest = hashlib.sha256()
    for kind, rel, content in sorted(records, key=lambda item: item[1]):
        # NUL cannot occur in a path, so these records cannot be confused with one another.
        digest.update(kind + b"\0" + rel + b"\0" + content.encode() + b"\n")
    return digest.hexdigest()


def tree_sha256(directory: Path) -> str:
    """A deterministic hash over every relative path and content below `directory`.

    Nothing is ignored. Symlinks are hashed as their link text and never followed.
    The order files were created in does not matter: entries are sorted by path bytes.
    """
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory")
    return _records_sha256(_entries(root, b""))


def tree_sha256_of_files(files: Mapping[str, bytes]) -> str:
    """The `tree_sha256` a directory holding exactly these regular files would have.

    Keys are paths relative to the model directory (`weights/model.onnx`); parent
    directories are implied, as in Git, which cannot hold empty directories.
    """
    records: dict[bytes, tuple[bytes, bytes, str]] = {}
    for name, content in files.items():
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if not parts or ".." in parts:
            raise ValueError(f"{name!r}: not a path inside the model directory")
        for depth in range(1, len(parts)):
            rel = os.fsencode("/".join(parts[:depth]))
            records[rel] = (b"dir", rel, "")
        rel = os.fsencode("/".join(parts))
        records[rel] = (b"file", rel, hashlib.sha256(content).hexdigest())
    return _records_sha256(records.values())


def fingerprint_digest(fingerprint: Fingerprint) -> str:
    """The sha256 over all of a fingerprint's fields except the digest, in canonical JSON."""
    fields = fingerprint.model_dump(exclude={"digest"})
    document = {"schema": FINGERPRINT_SCHEMA, **fields}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def make_fingerprint(
    *,
    candidate_dir: Path,
    candidate_weights: Path,
    baseline_dir: Path | None,
    baseline_weights: Path | None,
    benchmark_sha256: str,
    policy: Policy,
    evaluator_version: str,
) -> Fingerprint:
    """Fingerprint the candidate, the baseline, the benchmark, the policy and the evaluator."""
    unsigned = Fingerprint(
        candidate_tree_sha256=tree_sha256(candidate_dir),
        candidate_weights_sha256=file_sha256(candidate_weights),
        baseline_tree_sha256=tree_sha256(baseline_dir) if baseline_dir is not None else None,
        baseline_weights_sha256=(
            file_sha256(baseline_weights) if baseline_weights is not None else None
        ),
        benchmark_sha256=benchmark_sha256,
        policy_sha256=policy_sha256(policy),
        evaluator_version=evaluator_version,
        digest="",
    )
    return unsigned.model_copy(update={"digest": fingerprint_digest(unsigned)})
