"""Fingerprints change with any byte of what was evaluated, and only then."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evaluators.judgement.fingerprint import (
    file_sha256,
    fingerprint_digest,
    make_fingerprint,
    tree_sha256,
    tree_sha256_of_files,
)
from evaluators.policy import Policy, TrackedMetric

FILES = {
    "config.yaml": b"name: churn\ntask: binary_classification\n",
    "eval_results.json": b'{"metrics": {"roc_auc": 0.87}}',
    "CHANGELOG.md": b"# 2\nMore trees.\n",
    "data_manifest.txt": b"snapshot:2026-10-01\n",
    "weights/model.onnx": bytes(range(256)) * 64,
    "weights/extra/notes.txt": b"nested\n",
}


def write_model(root: Path, files: dict[str, bytes], *, reverse: bool = False) -> Path:
    for name in sorted(files, reverse=reverse):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    return root


def test_the_same_files_hash_the_same_whatever_order_they_were_created_in(tmp_path: Path) -> None:
    first = write_model(tmp_path / "a", FILES)
    second = write_model(tmp_path / "b", FILES, reverse=True)
    assert tree_sha256(first) == tree_sha256(second)


@pytest.mark.parametrize("name", sorted(FILES))
def test_changing_one_byte_in_any_file_changes_the_hash(tmp_path: Path, name: str) -> None:
    root = write_model(tmp_path / "model", FILES)
    before = tree_sha256(root)
    content = bytearray(FILES[name])
    content[len(content) // 2] ^= 0x01
    (root / name).write_bytes(bytes(content))
    assert tree_sha256(root) != before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda root: (root / "CHANGELOG.md").rename(root / "CHANGES.md"), id="rename"),
        pytest.param(lambda root: (root / "weights" / "empty").mkdir(), id="an empty directory"),
        pytest.param(lambda root: (root / ".hidden").write_bytes(b""), id="a hidden empty file"),
        pytest.param(lambda root: (root / "CHANGELOG.md").unlink(), id="a deleted file"),
    ],
)
def test_nothing_inside_the_model_directory_is_ignored(
    tmp_path: Path, change: Callable[[Path], object]
) -> None:
    root = write_model(tmp_path / "model", FILES)
    before = tree_sha256(root)
    change(root)
    assert tree_sha256(root) != before


def test_symlinks_are_hashed_by_their_text_and_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"one")
    root = write_model(tmp_path / "model", FILES)
    (root / "weights" / "link.bin").symlink_to(outside)
    (root / "loop").symlink_to(root)  # would recurse forever if followed
    before = tree_sha256(root)

    outside.write_bytes(b"two")
    assert tree_sha256(root) == before

    (root / "weights" / "link.bin").unlink()
    (root / "weights" / "link.bin").symlink_to(tmp_path / "elsewhere.bin")
    assert tree_sha256(root) != before


def test_a_fifo_is_refused_rather_than_read(tmp_path: Path) -> None:
    root = write_model(tmp_path / "model", FILES)
    os.mkfifo(root / "pipe")
    with pytest.raises(ValueError, match="not a regular file"):
        tree_sha256(root)


def test_files_read_from_git_hash_like_the_same_files_on_disk(tmp_path: Path) -> None:
    root = write_model(tmp_path / "model", FILES)
    assert tree_sha256_of_files(FILES) == tree_sha256(root)
    assert tree_sha256_of_files({f"./{k}": v for k, v in FILES.items()}) == tree_sha256(root)
    changed = {**FILES, "CHANGELOG.md": b"# 3\n"}
    assert tree_sha256_of_files(changed) != tree_sha256(root)


def test_a_path_leaving_the_model_directory_is_refused() -> None:
    with pytest.raises(ValueError, match="not a path inside"):
        tree_sha256_of_files({"../policy.yml": b""})


def test_file_sha256_is_the_standard_sha256(tmp_path: Path) -> None:
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def fingerprint_inputs(tmp_path: Path) -> dict[str, Any]:
    candidate = write_model(tmp_path / "candidate", FILES)
    baseline = write_model(tmp_path / "baseline", {**FILES, "CHANGELOG.md": b"# 1\n"})
    return {
        "candidate_dir": candidate,
        "candidate_weights": candidate / "weights" / "model.onnx",
        "baseline_dir": baseline,
        "baseline_weights": baseline / "weights" / "model.onnx",
        "benchmark_sha256": "e" * 64,
        "policy": Policy(),
        "evaluator_version": "0.1.0",
    }


def test_the_digest_covers_every_field_and_is_reproducible(tmp_path: Path) -> None:
    inputs = fingerprint_inputs(tmp_path)
    first = make_fingerprint(**inputs)
    second = make_fingerprint(**inputs)
    assert first == second
    assert first.digest == fingerprint_digest(first)
    assert len(first.digest) == 64


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("benchmark_sha256", "f" * 64, id="another benchmark"),
        pytest.param("policy", Policy(metrics=[TrackedMetric(name="roc_auc")]), id="a policy"),
        pytest.param("evaluator_version", "0.1.1", id="another evaluator version"),
        pytest.param("baseline_dir", None, id="no production model"),
    ],
)
def test_changing_any_input_changes_the_digest(tmp_path: Path, field: str, value: object) -> None:
    inputs = fingerprint_inputs(tmp_path)
    before = make_fingerprint(**inputs)
    inputs[field] = value
    if field == "baseline_dir":
        inputs["baseline_weights"] = None
    after = make_fingerprint(**inputs)
    assert after.digest != before.digest


def test_one_byte_in_the_candidate_changes_the_digest(tmp_path: Path) -> None:
    inputs = fingerprint_inputs(tmp_path)
    before = make_fingerprint(**inputs)
    (tmp_path / "candidate" / "data_manifest.txt").write_bytes(b"snapshot:2026-10-02\n")
    after = make_fingerprint(**inputs)
    assert after.candidate_tree_sha256 != before.candidate_tree_sha256
    assert after.digest != before.digest


def test_a_tampered_fingerprint_no_longer_matches_its_digest(tmp_path: Path) -> None:
    fingerprint = make_fingerprint(**fingerprint_inputs(tmp_path))
    tampered = fingerprint.model_copy(update={"benchmark_sha256": "0" * 64})
    assert fingerprint_digest(tampered) != tampered.digest
