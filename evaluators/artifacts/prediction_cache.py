"""Reuse model outputs for identical (artifact bytes, input spec, benchmark) — a rebase or a
`/retest` that changes no bytes does not pay for inference again.

The key is content-addressed (the artifact's sha256 and the pinned benchmark sha256), so a
PR cannot make the bot reuse another model's outputs. Arrays are stored as .npy, never pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from evaluators.candidate import ModelConfig


def cache_key(*, weights_sha256: str, config: ModelConfig, benchmark_sha256: str) -> str:
    """Everything that determines the outputs; names, notes and hyper-parameters do not."""
    spec = {
        "weights": weights_sha256,
        "format": config.format.value,
        "task": config.task.value,
        "features": config.features,
        "input": config.input.model_dump(mode="json"),
        "classes": config.classes,
        "positive_class": config.positive_class,
        "benchmark": benchmark_sha256,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def load(cache_dir: Path | None, key: str) -> NDArray[np.float64] | None:
    if cache_dir is None:
        return None
    path = cache_dir / f"{key}.npy"
    try:
        values: NDArray[np.float64] = np.load(path, allow_pickle=False)
        return values
    except (OSError, ValueError):
        return None


def store(cache_dir: Path | None, key: str, values: NDArray[np.float64]) -> None:
    """Write atomically so a concurrent reader never sees half a file."""
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, values, allow_pickle=False)
    os.replace(tmp, cache_dir / f"{key}.npy")
