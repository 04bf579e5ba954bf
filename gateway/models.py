"""Loaded models, cached by bundle sha256: the same bytes are loaded once, whatever routing slot
or model name points at them. Loading goes only through `evaluators.artifacts` (ONNX, skops)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from evaluators.artifacts.inference import Runner, open_runner
from evaluators.artifacts.loading import ArtifactError
from evaluators.bounded import DocumentError
from evaluators.candidate import ArtifactFormat, ModelConfig, Task, parse_model_config
from gateway.routing import Deployed
from gateway.store import ArtifactStore, DigestMismatch, StoreError


class LoadError(RuntimeError):
    """The version cannot be served; the message is short and fixed for operators' logs."""


@dataclass(frozen=True)
class LoadedModel:
    model: str
    version: str
    sha256: str
    config: ModelConfig
    runner: Runner

    @property
    def features(self) -> list[str]:
        return self.config.features

    def scores(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        """The positive-class score per row (binary), or the predicted value (regression)."""
        if self.config.format is not ArtifactFormat.ONNX:
            _one_openmp_thread()
        out = self.runner.predict(x)
        if out.ndim != 1:
            raise ValueError("the gateway serves binary classifiers and regressors only")
        return out


_THREAD = threading.local()


def _one_openmp_thread() -> None:
    """Score scikit-learn models on one OpenMP thread in each thread that serves requests.

    The gateway answers requests in parallel threads, each a row or a few: an OpenMP team per
    call (HistGradientBoosting's predict opens one on every core) only oversubscribes the
    cores, and its spin-waiting made single-row answers 10-20x slower on two busy cores
    (a skops canary judged on latency that was the gateway's, not the model's). The limit is
    OpenMP's per-thread setting, so it is set once per thread and nothing else is changed."""
    if not getattr(_THREAD, "one_openmp_thread", False):
        threadpool_limits(limits=1, user_api="openmp")
        _THREAD.one_openmp_thread = True


def load_model(
    store: ArtifactStore, *, model: str, deployed: Deployed, cache_dir: Path
) -> LoadedModel:
    """Fetch, verify the sha256, and open a runner through the safe loaders."""
    try:
        path = store.fetch(model, deployed.version, sha256=deployed.sha256, into=cache_dir)
    except DigestMismatch:
        raise LoadError("sha256 mismatch") from None
    except StoreError:
        raise LoadError("not in the artifact store") from None
    try:
        config = parse_model_config((path / "config.yaml").read_text(encoding="utf-8"))
        if config.task is Task.MULTICLASS:
            raise LoadError("multiclass models are not served")
        runner = open_runner(model_dir=path, config=config)
    except ArtifactError as exc:
        raise LoadError("unsafe or unsupported artifact") from exc
    except (DocumentError, ValueError, OSError) as exc:
        raise LoadError("model cannot be opened") from exc
    return LoadedModel(model, deployed.version, deployed.sha256, config, runner)


class ModelCache:
    """Loaded models by sha256; failures remembered until the routing table changes."""

    def __init__(self, store: ArtifactStore, cache_dir: Path) -> None:
        self._store = store
        self._dir = cache_dir
        self._loaded: dict[str, LoadedModel] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, model: str, deployed: Deployed) -> LoadedModel | str:
        """The loaded model, or the short reason it is not loaded."""
        with self._lock:
            if deployed.sha256 in self._loaded:
                return self._loaded[deployed.sha256]
            if deployed.sha256 in self._failed:
                return self._failed[deployed.sha256]
        try:
            loaded = load_model(self._store, model=model, deployed=deployed, cache_dir=self._dir)
        except LoadError as exc:
            with self._lock:
                self._failed[deployed.sha256] = str(exc)
            return str(exc)
        with self._lock:
            self._loaded[deployed.sha256] = loaded
        return loaded

    def retain(self, keep: set[str]) -> None:
        """Forget models no longer routed, and every remembered failure (a new table retries)."""
        with self._lock:
            self._loaded = {sha: m for sha, m in self._loaded.items() if sha in keep}
            self._failed.clear()
