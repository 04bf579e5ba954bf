"""A batch of mirrored requests scored by the shadow: every request answered, scored and timed on
its own (a single request's inference, as the gateway times production's), and logged."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gateway import names
from gateway.clock import SystemClock
from gateway.models import LoadedModel, ModelCache
from gateway.predlog import PredictionLog
from gateway.routing import Deployed
from gateway.shadow_batch import ShadowBatch, ShadowJob, score
from gateway.store import ArtifactStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHADOW = FIXTURES / "registry/candidate_better/models/churn"  # 150 trees: not a toy model


@pytest.fixture
def shadow(tmp_path: Path) -> LoadedModel:
    store = ArtifactStore(str(tmp_path / "store"))
    sha = store.publish(SHADOW, model="churn", version="pr7-abc")
    loaded = ModelCache(store, tmp_path / "cache").get(
        "churn", Deployed(version="pr7-abc", sha256=sha)
    )
    assert isinstance(loaded, LoadedModel)
    return loaded


def test_every_request_of_a_batch_is_answered_timed_and_logged_on_its_own(
    shadow: LoadedModel, tmp_path: Path
) -> None:
    x = pd.read_parquet(
        FIXTURES / "benchmark/churn_benchmark.parquet", columns=shadow.features
    ).to_numpy(np.float32)[:24]
    rows = [1] * 10 + [3] + [1] * 11  # one request of three rows among single rows
    at = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
    jobs = [ShadowJob(n, f"req-{i}", at, logged=i != 4) for i, n in enumerate(rows)]
    log = PredictionLog(
        fs=ArtifactStore(str(tmp_path / "log")).fs, root=str(tmp_path / "log"), clock=SystemClock()
    )

    totals = score(shadow, ShadowBatch("churn", "pr7-abc", "sha", jobs, x), log)
    log.flush()

    assert (totals.ok, totals.error) == (22, 0)
    assert sum(count for _, count, _ in totals.latency) == 22  # each request, alone
    assert sum(count for _, count, _ in totals.score) == 24  # every row's score
    frame = pd.read_parquet(tmp_path / "log" / names.PREDICTION_LOG_DIR)
    frame = frame.set_index(names.LOG_REQUEST_ID)
    assert len(frame) == 23 and "req-4" not in frame.index  # not sampled for the log
    assert frame[names.LOG_LATENCY_MS].notna().all()
    # Each row gets the score the model gives it alone.
    alone = np.concatenate([shadow.scores(x[i : i + 1]) for i in range(24)])
    singles = [i for i in range(10) if i != 4]
    logged = [frame.loc[f"req-{i}", names.LOG_SCORE] for i in singles]
    np.testing.assert_allclose(logged, alone[singles], rtol=1e-6)
    three = [frame.loc[f"req-10#{k}", names.LOG_SCORE] for k in range(3)]
    np.testing.assert_allclose(three, alone[10:13], rtol=1e-6)
    assert frame.loc["req-21", names.LOG_SCORE] == pytest.approx(alone[23], rel=1e-6)
