"""A running stage reads the gateways' prediction log again at every visit. What it reads must
be every row logged since it started — no more, no fewer — while a file it already read is not
read again (the gateways never change a file once written)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bot.rollout.metrics.prediction_log import read_prediction_log
from gateway import names
from gateway.predlog import LogEntry, PredictionLog
from gateway.store import ArtifactStore
from tests.gateway_harness import FixedClock

START = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)


def log_requests(log: PredictionLog, first: int, n: int, at: datetime) -> None:
    for i in range(first, first + n):
        x = np.array([[float(i), 1.0]], dtype=np.float32)
        entry = LogEntry(f"req-{i}", "1.0.0", at, ["a", "b"], x, np.array([i / 1000]), 1.0, None)
        log.add("churn", names.VARIANT_SHADOW, entry)
    log.flush()


def every_file(store: Path) -> pd.DataFrame:
    """What reading every file again gives (the rows, in request order)."""
    frames = [pd.read_parquet(path) for path in sorted(store.rglob("variant=shadow/*.parquet"))]
    return pd.concat(frames, ignore_index=True)


def ids(frame: pd.DataFrame) -> list[str]:
    return sorted(frame[names.LOG_REQUEST_ID])


def test_each_visit_reads_what_was_logged_since_the_last_and_no_file_twice(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    log = PredictionLog(fs=store.fs, root=store.root, clock=FixedClock(START))
    log_requests(log, 0, 50, START)
    log_requests(log, 50, 50, START + timedelta(minutes=5))
    first = read_prediction_log(store, "churn", names.VARIANT_SHADOW, since=START)
    assert ids(first) == ids(every_file(tmp_path))
    assert len(first) == 100

    # A file already read is not opened again: replacing its bytes changes nothing.
    read_files = sorted(tmp_path.rglob("variant=shadow/*.parquet"))
    read_files[0].write_bytes(b"not parquet any more")
    # More traffic, across midnight: a second day's folder appears.
    log_requests(log, 100, 30, START + timedelta(minutes=30))
    log_requests(log, 130, 20, START + timedelta(hours=1, minutes=30))
    second = read_prediction_log(store, "churn", names.VARIANT_SHADOW, since=START)
    assert sorted(second[names.LOG_REQUEST_ID]) == sorted(f"req-{i}" for i in range(150))
    scores = second.set_index(names.LOG_REQUEST_ID)[names.LOG_SCORE]
    assert scores["req-149"] == 0.149 and scores["req-0"] == 0.0

    # Rows before `since` are left out, whatever was read before.
    later = read_prediction_log(
        store, "churn", names.VARIANT_SHADOW, since=START + timedelta(minutes=5)
    )
    assert sorted(later[names.LOG_REQUEST_ID]) == sorted(f"req-{i}" for i in range(50, 150))


def test_a_file_removed_by_retention_is_no_longer_read(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    log = PredictionLog(fs=store.fs, root=store.root, clock=FixedClock(START))
    log_requests(log, 0, 10, START)
    log_requests(log, 10, 10, START)
    assert len(read_prediction_log(store, "churn", names.VARIANT_SHADOW, since=START)) == 20
    gone = next(
        p
        for p in tmp_path.rglob("*.parquet")
        if "req-0" in set(pd.read_parquet(p)[names.LOG_REQUEST_ID])
    )
    gone.unlink()
    left = read_prediction_log(store, "churn", names.VARIANT_SHADOW, since=START)
    assert sorted(left[names.LOG_REQUEST_ID]) == sorted(f"req-{i}" for i in range(10, 20))
