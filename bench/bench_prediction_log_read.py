"""A running shadow stage's visit: reading the prediction log since the stage started, when the
log already holds ROWS rows in FILES files and a few new files arrived since the last visit.

    .venv/bin/python bench/bench_prediction_log_read.py [--rows 1000000] [--files 200] [--new 4]

Compared in the same run:
- `every file` — what a visit did before: read each day's folder whole (`pandas.read_parquet`
  of the folder), the obvious way;
- `incremental` — `read_prediction_log`, which keeps what it read and opens only new files.

The rows are the gateway's own: written by `gateway.predlog.PredictionLog` (request ids, times,
features as JSON text, scores). Writing is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.rollout.metrics.prediction_log import read_prediction_log  # noqa: E402
from gateway import names  # noqa: E402
from gateway.predlog import LogEntry, PredictionLog  # noqa: E402
from gateway.store import ArtifactStore  # noqa: E402

START = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
FEATURES = [f"f{i}" for i in range(8)]


class _At:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def write_files(log: PredictionLog, files: int, rows_per_file: int, first: int) -> int:
    """`files` flushes of `rows_per_file` one-row requests, as a gateway writes them."""
    rng = np.random.default_rng(first)
    for f in range(files):
        x = rng.normal(size=(rows_per_file, len(FEATURES))).astype(np.float32)
        scores = rng.random(rows_per_file)
        at = START + timedelta(seconds=5 * (first // rows_per_file + f))
        for i in range(rows_per_file):
            entry = LogEntry(
                f"req-{first + i}",
                "1.0.0",
                at,
                FEATURES,
                x[i : i + 1],
                scores[i : i + 1],
                1.0,
                None,
            )
            log.add("churn", names.VARIANT_SHADOW, entry)
        log.flush()
        first += rows_per_file
    return first


def every_file(store: ArtifactStore) -> pd.DataFrame:
    root = Path(store.root) / names.PREDICTION_LOG_DIR / "model=churn"
    frames = [pd.read_parquet(day / "variant=shadow") for day in sorted(root.glob("day=*"))]
    frame = pd.concat(frames, ignore_index=True)
    times = pd.to_datetime(frame[names.LOG_TIME], utc=True)
    return frame[times >= pd.Timestamp(START)].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--new", type=int, default=4, help="files written between two visits")
    parser.add_argument("--visits", type=int, default=5)
    args = parser.parse_args()
    per_file = args.rows // args.files
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(tmp)
        log = PredictionLog(fs=store.fs, root=store.root, clock=_At(START), max_buffered=10**9)
        written = write_files(log, args.files, per_file, 0)
        read_prediction_log(store, "churn", names.VARIANT_SHADOW, since=START)  # first visit
        old, new = [], []
        for _ in range(args.visits):
            written = write_files(log, args.new, per_file, written)
            started = time.perf_counter()
            full = every_file(store)
            old.append(time.perf_counter() - started)
            started = time.perf_counter()
            incremental = read_prediction_log(store, "churn", names.VARIANT_SHADOW, since=START)
            new.append(time.perf_counter() - started)
            assert len(full) == len(incremental) == written, (len(full), len(incremental))
            assert set(full[names.LOG_REQUEST_ID]) == set(incremental[names.LOG_REQUEST_ID])
    a, b = statistics.median(old), statistics.median(new)
    print(f"log: {written:,} rows in {args.files + args.new * args.visits} files")
    print(f"every file   : median {a:.3f} s per visit ({min(old):.3f}-{max(old):.3f})")
    print(f"incremental  : median {b:.3f} s per visit ({min(new):.3f}-{max(new):.3f})")
    print(f"ratio every file / incremental: {a / b:.1f}x")


if __name__ == "__main__":
    main()
