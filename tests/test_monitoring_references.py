"""What a production model's scores are compared with: its shadow run, read from the staging
gateways' prediction log as the gateway writes it, and its first week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bot.base.clock import ManualClock
from bot.monitoring.reference import MIN_SCORES, scores_profile, shadow_scores
from evaluators.statistics.drift import ReferenceProfile
from evaluators.statistics.drift_tests import prediction_drift
from gateway import names
from gateway.predlog import LogEntry, PredictionLog
from gateway.store import ArtifactStore

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
FEATURES = ["a", "b"]


def _write(store: Path, variant: str, version: str, scores: np.ndarray, at: datetime) -> None:
    log = PredictionLog(fs=ArtifactStore(str(store)).fs, root=str(store), clock=ManualClock(at))
    for i, score in enumerate(scores):
        log.add(
            "churn",
            variant,
            LogEntry(
                request_id=f"{variant}-{i}",
                version=version,
                time=at + timedelta(seconds=i),
                features=FEATURES,
                x=np.zeros((1, 2), dtype=np.float32),
                scores=np.array([score]),
                latency_ms=1.0,
                error=None,
            ),
        )
    log.flush()


def test_the_shadow_reference_is_the_candidates_own_scores_on_mirrored_traffic(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    staging = tmp_path / "staging"
    _write(staging, names.VARIANT_SHADOW, "pr7-abc", rng.beta(2, 5, 2000), T0)
    # Another candidate's shadow run in the same log is not this one's reference.
    _write(staging, names.VARIANT_SHADOW, "pr8-def", rng.beta(5, 2, 2000), T0)
    text = shadow_scores(str(staging), model="churn", version="pr7-abc", since=T0, column="score")
    assert text is not None
    profile = ReferenceProfile.from_json(text)
    assert profile.rows == 2000
    same = prediction_drift(profile, rng.beta(2, 5, 5000))
    moved = prediction_drift(profile, rng.beta(5, 2, 5000))
    assert same.psi < 0.02 and moved.psi > 1


def test_no_reference_without_a_shadow_run_or_with_too_few_scores(tmp_path: Path) -> None:
    assert shadow_scores(None, model="churn", version="v", since=T0, column="score") is None
    staging = tmp_path / "staging"
    _write(staging, names.VARIANT_SHADOW, "v", np.full(MIN_SCORES - 1, 0.5), T0)
    assert shadow_scores(str(staging), model="churn", version="v", since=T0, column="score") is None
    assert scores_profile(pd.Series(["x", None, float("nan")] * 100), "score") is None


def test_a_profile_shipyard_built_for_a_wide_model_is_read_whatever_its_size(
    tmp_path: Path,
) -> None:
    from bot.base.settings import Settings
    from bot.monitoring.reference import MONITORING_DIR, training_profile
    from evaluators.policy import parse_policy
    from evaluators.statistics.drift import MAX_PROFILE_BYTES, MONITORING_CDF_POINTS, build_profile

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(2000, 300)), columns=[f"f{i}" for i in range(300)])
    profile = build_profile(frame, columns=list(frame.columns), cdf_points=MONITORING_CDF_POINTS)
    text = profile.model_dump_json()
    assert len(text) > MAX_PROFILE_BYTES  # more than an author's reference_profile.json may be
    store = ArtifactStore(str(tmp_path / "production"))
    kept = store.path(MONITORING_DIR, "churn", "v2", "reference_profile.json")
    store.fs.makedirs(store.path(MONITORING_DIR, "churn", "v2"), exist_ok=True)
    with store.fs.open(kept, "w") as handle:
        handle.write(text)
    read = training_profile(
        Settings.model_construct(), store, parse_policy(None), model="churn", version="v2"
    )
    assert read is not None and len(read.features) == 300
