"""The verification-verdict cache: exact bytes that passed skip re-verification; nothing else."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.artifacts.loading import UnsafeArtifactError, verify_artifact
from evaluators.artifacts.verdict_cache import VerdictCache
from evaluators.candidate import ArtifactFormat

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = ROOT / "fixtures/registry/production/models/churn"


def _model(tmp_path: Path) -> tuple[Path, Path]:
    model_dir = tmp_path / "churn"
    shutil.copytree(PRODUCTION, model_dir)
    return model_dir, next((model_dir / "weights").iterdir())


_PROBE = """
import sys
from pathlib import Path
from evaluators.artifacts.loading import verify_artifact
from evaluators.artifacts.verdict_cache import VerdictCache
from evaluators.candidate import ArtifactFormat
path, cache = Path(sys.argv[1]), VerdictCache(Path(sys.argv[2]))
verify_artifact(path, expected=ArtifactFormat.ONNX, root=path.parent.parent, cache=cache)
print("onnx imported" if "onnx" in sys.modules else "onnx not imported")
"""


def _verify_in_fresh_process(weights: Path, cache_dir: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(weights), str(cache_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_a_repeat_verification_of_the_same_bytes_needs_no_onnx(tmp_path: Path) -> None:
    _, weights = _model(tmp_path)
    cache_dir = tmp_path / "cache"
    assert _verify_in_fresh_process(weights, cache_dir) == "onnx imported"
    assert len(list(cache_dir.iterdir())) == 1
    assert _verify_in_fresh_process(weights, cache_dir) == "onnx not imported"


def test_changed_bytes_miss_the_cache_and_a_pickle_is_still_refused(tmp_path: Path) -> None:
    model_dir, weights = _model(tmp_path)
    cache = VerdictCache(tmp_path / "cache")
    verify_artifact(weights, expected=ArtifactFormat.ONNX, root=model_dir, cache=cache)
    weights.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(UnsafeArtifactError, match="pickle"):
        verify_artifact(weights, expected=ArtifactFormat.ONNX, root=model_dir, cache=cache)


def test_a_refusal_is_never_cached(tmp_path: Path) -> None:
    model_dir, weights = _model(tmp_path)
    weights.write_bytes(pickle.dumps([1, 2, 3]))
    cache_dir = tmp_path / "cache"
    for _ in range(2):
        with pytest.raises(UnsafeArtifactError):
            verify_artifact(
                weights, expected=ArtifactFormat.ONNX, root=model_dir, cache=VerdictCache(cache_dir)
            )
    assert not cache_dir.exists() or not list(cache_dir.iterdir())


def test_a_corrupt_cache_entry_means_verifying_again(tmp_path: Path) -> None:
    model_dir, weights = _model(tmp_path)
    cache_dir = tmp_path / "cache"
    verify_artifact(
        weights, expected=ArtifactFormat.ONNX, root=model_dir, cache=VerdictCache(cache_dir)
    )
    (entry,) = cache_dir.iterdir()
    entry.write_text("{not json")
    assert _verify_in_fresh_process(weights, cache_dir) == "onnx imported"
    assert _verify_in_fresh_process(weights, cache_dir) == "onnx not imported"
