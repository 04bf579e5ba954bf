"""The prediction log as files on disk: partitions from the injected clock, one row per input
row, missing values and failed requests written as nulls, readable by pandas."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd

from gateway import names
from gateway.predlog import LogEntry, PredictionLog
from tests.gateway_harness import FixedClock


def test_rows_partitions_and_nulls_read_back_with_pandas(tmp_path: Path) -> None:
    fs, root = fsspec.core.url_to_fs(str(tmp_path))
    clock = FixedClock(datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC))
    lost: list[tuple[str, int]] = []
    log = PredictionLog(fs=fs, root=root, clock=clock, on_drop=lambda r, n: lost.append((r, n)))
    next_day = datetime(2026, 12, 6, 0, 0, 1, tzinfo=UTC)
    x = np.array([[1.5, np.nan], [0.25, 3.0]], dtype=np.float32)
    log.add(
        "churn",
        "production",
        LogEntry("a", "1.0.0", clock.now(), ["p%", 'q"'], x, np.array([0.9, 0.1]), 0.5, None),
    )
    log.add(
        "churn",
        "shadow",
        LogEntry("a", "1.1.0", clock.now(), ["p%", 'q"'], x, None, 0.7, "model failed to answer"),
    )
    log.add(
        "churn",
        "production",
        LogEntry("b", "1.0.0", next_day, ["p%", 'q"'], x[:1], np.array([np.nan]), 0.4, None),
    )
    assert log.flush() == 5
    assert lost == []

    frame = pd.read_parquet(tmp_path / names.PREDICTION_LOG_DIR)
    frame["day"] = frame["day"].astype(str)
    frame["variant"] = frame["variant"].astype(str)
    assert len(frame) == 5
    first = frame[(frame["request_id"] == "a#0") & (frame["variant"] == "production")].iloc[0]
    assert json.loads(first["features"]) == {"p%": 1.5, 'q"': None}  # NaN is a JSON null
    assert first["score"] == 0.9 and json.loads(first["outputs"]) == {"score": 0.9}
    assert first["day"] == "2026-12-05" and first["time"] == pd.Timestamp(clock.now())
    failed = frame[frame["variant"] == "shadow"]
    assert list(failed["request_id"]) == ["a#0", "a#1"]
    assert failed["score"].isna().all()
    assert set(failed["error"]) == {"model failed to answer"}
    assert [json.loads(o) for o in failed["outputs"]] == [{"score": None}] * 2
    late = frame[frame["request_id"] == "b"].iloc[0]
    assert late["day"] == "2026-12-06" and pd.isna(late["score"])
    assert not list(tmp_path.rglob(".*.tmp"))  # no half-written files left behind


def test_a_full_buffer_drops_rows_and_counts_them(tmp_path: Path) -> None:
    fs, root = fsspec.core.url_to_fs(str(tmp_path))
    lost: list[tuple[str, int]] = []
    clock = FixedClock(datetime(2026, 12, 5, tzinfo=UTC))
    log = PredictionLog(
        fs=fs, root=root, clock=clock, max_buffered=3, on_drop=lambda r, n: lost.append((r, n))
    )
    x = np.zeros((2, 1), dtype=np.float32)
    for request_id in ("a", "b"):
        log.add(
            "m",
            "production",
            LogEntry(request_id, "1", clock.now(), ["f"], x, np.zeros(2), 0.1, None),
        )
    assert lost == [("buffer_full", 2)]
    assert log.flush() == 2


def test_what_pyarrow_imports_lazily_is_imported_at_start_not_by_the_first_flush(
    tmp_path: Path,
) -> None:
    """The first flush used to import pandas (pyarrow loads it lazily) on the writer thread,
    holding the GIL for about a second while production answers waited: the p99 of every
    gateway's first seconds. A fresh interpreter shows where the import now happens."""
    import subprocess
    import sys

    script = (
        "import sys, fsspec\n"
        "from gateway.predlog import PredictionLog\n"
        "from gateway.clock import SystemClock\n"
        "before = 'pandas' in sys.modules\n"
        f"fs, root = fsspec.core.url_to_fs({str(tmp_path)!r})\n"
        "log = PredictionLog(fs=fs, root=root, clock=SystemClock())\n"
        "log.start()\n"
        "print(before, 'pandas' in sys.modules)\n"
        "log.stop()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["False", "True"], done.stderr
    assert not list(tmp_path.rglob("*.parquet"))  # the warm-up writes nothing
