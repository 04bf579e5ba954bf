"""What a production model's traffic is compared with: the training reference profile of its
features, and profiles of its own scores (its first week in production, its shadow run).

The training profile is the model directory's `reference_profile.json` when it shipped one
(published with the bundle), else a profile of the base branch policy's pinned benchmark over
the model's features, built once and kept beside the bundle in the production store.
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pandas as pd

from bot.base.settings import Settings
from bot.rollout.metrics.prediction_log import read_prediction_log
from evaluators.artifacts.benchmark_data import load_benchmark
from evaluators.candidate import parse_model_config
from evaluators.policy import Policy
from evaluators.statistics.drift import (
    MAX_PROFILE_BYTES,
    MONITORING_CDF_POINTS,
    PROFILE_FILE,
    ReferenceProfile,
    build_profile,
)
from evaluators.statistics.drift_tests import score_profile
from gateway import names
from gateway.store import MODELS_DIR, ArtifactStore, StoreError

log = logging.getLogger(__name__)

MONITORING_DIR = "monitoring"
MIN_SCORES = 100  # fewer scores than this make no reference worth judging against


# The profile Shipyard built itself is not bounded like an author's file: at 257 CDF points a
# numeric feature takes ~21 KB, so a model with 200+ features passes the 4 MB a shipped
# profile may take.
MAX_BUILT_PROFILE_BYTES = 256 * 1024 * 1024


def _read(store: ArtifactStore, path: str, *, built: bool = False) -> ReferenceProfile | None:
    if not store.fs.exists(path):
        return None
    with store.fs.open(path, "rb") as handle:
        if built:
            return ReferenceProfile.model_validate_json(handle.read(MAX_BUILT_PROFILE_BYTES))
        return ReferenceProfile.from_json(handle.read(MAX_PROFILE_BYTES + 1))


def training_profile(
    settings: Settings, store: ArtifactStore, policy: Policy, *, model: str, version: str
) -> ReferenceProfile | None:
    """The profile the model's features are judged against; None when there is none (feature
    drift is then not measured, and the monitor says so)."""
    try:
        shipped = _read(store, store.path(MODELS_DIR, model, version, PROFILE_FILE))
        if shipped is not None:
            return shipped
        kept = store.path(MONITORING_DIR, model, version, PROFILE_FILE)
        built = _read(store, kept, built=True)
        if built is not None or policy.benchmark is None:
            return built
        config_path = store.path(MODELS_DIR, model, version, "config.yaml")
        with store.fs.open(config_path, "rb") as handle:
            features = parse_model_config(handle.read(1_000_000).decode("utf-8")).features
    except (OSError, ValueError, StoreError) as exc:
        log.warning("monitor %s %s: no reference profile: %s", model, version, exc)
        return None
    benchmark = load_benchmark(
        policy=policy.benchmark,
        base_dir=settings.benchmark_dir,
        roots=settings.allowed_benchmark_roots(),
    ).frame
    present = [f for f in features if f in benchmark.columns]
    if benchmark.empty or not present:
        return None
    drift = policy.shadow.drift
    profile = build_profile(
        benchmark,
        columns=present,
        bins=drift.bins,
        max_categories=drift.max_categories,
        cdf_points=MONITORING_CDF_POINTS,
    )
    store.fs.makedirs(store.path(MONITORING_DIR, model, version), exist_ok=True)
    with store.fs.open(kept, "w") as handle:
        handle.write(profile.model_dump_json())
    return profile


def scores_profile(scores: pd.Series, column: str) -> str | None:
    """A score profile's JSON for the monitor row, from the scores logged (None when too few)."""
    values = pd.to_numeric(scores, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[np.isfinite(values)]
    if len(values) < MIN_SCORES:
        return None
    return score_profile(values, column=column).model_dump_json()


def shadow_scores(
    shadow_store: str | None, *, model: str, version: str, since: datetime, column: str
) -> str | None:
    """The candidate's scores on mirrored traffic while it was in shadow, as a profile."""
    if not shadow_store:
        return None
    try:
        logged = read_prediction_log(
            ArtifactStore(shadow_store), model, names.VARIANT_SHADOW, since=since
        )
    except (OSError, ValueError, StoreError) as exc:
        log.warning("monitor %s %s: shadow log unreadable: %s", model, version, exc)
        return None
    return scores_profile(logged[logged[names.LOG_VERSION] == version][names.LOG_SCORE], column)


__all__ = ["MONITORING_DIR", "scores_profile", "shadow_scores", "training_profile"]
