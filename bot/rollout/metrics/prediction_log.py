"""The MetricsSource port over the gateways' prediction log (Parquet in the artifact store), for
a production gateway without Prometheus: the same questions, answered from the logged rows.

Counts are the rows logged: a gateway that logs a share of requests (`log_share`) is judged on
that sample, so minimum-request rules are met later, never sooner. Mirror accounting and the
policy's business metrics are PromQL and need Prometheus: asked here, they are unavailable, and
the caller fails closed (a business metric without data never passes).
"""

from __future__ import annotations

import posixpath
import threading
from collections import OrderedDict
from datetime import datetime

import numpy as np
import pandas as pd

from bot.rollout.metrics.source import (
    MetricsUnavailable,
    MirrorCounts,
    NoData,
    Series,
    Window,
)
from evaluators.artifacts.benchmark_data import parquet_frame
from gateway import names
from gateway.metrics import SCORE_BUCKETS
from gateway.store import ArtifactStore


def read_prediction_log(
    store: ArtifactStore, model: str, variant: str, *, since: datetime
) -> pd.DataFrame:
    """Rows the gateways logged for a model and variant since `since` (empty if none yet).

    Each visit of a running stage reads only the files written since its last visit (see
    `_LogFolders`); the rows are the same as reading every file again."""
    root = store.path(names.PREDICTION_LOG_DIR, f"model={model}")
    empty = pd.DataFrame({column: pd.Series(dtype=object) for column in names.LOG_COLUMNS})
    if not store.fs.exists(root):
        return empty
    days = sorted(p for p in store.fs.ls(root, detail=False) if "day=" in p)
    first_day = since.strftime("%Y-%m-%d")
    frames = []
    for day in days:
        if day.rsplit("day=", 1)[1] < first_day:
            continue  # whole days before the stage started
        folder = f"{day}/variant={variant}"
        if store.fs.exists(folder):
            frame = _FOLDERS.read(store, folder)
            if not frame.empty:
                frames.append(frame)
    if not frames:
        return empty
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    times = pd.to_datetime(frame[names.LOG_TIME], utc=True)
    return frame[times >= pd.Timestamp(since)].reset_index(drop=True)


class _LogFolders:
    """The log folders read so far, as one frame each, with the files they hold.

    The gateways write each flush to a new file under a unique name and never change it (a
    hidden temporary name is renamed into place), so a folder read before is brought up to date
    by reading only the files it did not have: a 24-hour shadow stage visited every 15 minutes
    no longer reads its whole log at every visit. A file that went away (retention) makes the
    folder be read afresh. Bounded by rows held (least recently used out first); shared by the
    stages of one process, hence the lock.
    """

    def __init__(self, max_rows: int) -> None:
        self._max_rows = max_rows
        self._held: OrderedDict[tuple[str, str], tuple[frozenset[str], pd.DataFrame]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def read(self, store: ArtifactStore, folder: str) -> pd.DataFrame:
        files = frozenset(
            path
            for path in store.fs.ls(folder, detail=False)
            if path.endswith(".parquet") and not posixpath.basename(path).startswith(".")
        )
        key = (store.url, folder)
        with self._lock:
            held = self._held.get(key)
        if held is not None and held[0] <= files:
            known, frame = held
            new = sorted(files - known)
            if new:
                frame = pd.concat([frame, *(_read_file(store, p) for p in new)], ignore_index=True)
        else:
            parts = [_read_file(store, path) for path in sorted(files)]
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        with self._lock:
            self._held[key] = (files, frame)
            self._held.move_to_end(key)
            while sum(len(f) for _, f in self._held.values()) > self._max_rows and self._held:
                self._held.popitem(last=False)
        return frame


def _read_file(store: ArtifactStore, path: str) -> pd.DataFrame:
    # The bytes, then Arrow: not pyarrow over the fsspec filesystem, whose reads call back
    # into Python from Arrow's threads (benchmark_data.parquet_frame).
    return parquet_frame(store.fs.cat_file(path))


# About 1 GB of log rows: a day of one busy model's production and shadow traffic.
_FOLDERS = _LogFolders(max_rows=4_000_000)


def score_counts(scores: np.ndarray) -> tuple[float, ...]:
    """Counts per SCORE_BUCKETS bucket, as the gateway's histogram counts them (upper bounds
    inclusive, like Prometheus' `le`; anything above the last bound in the last bucket)."""
    index = np.searchsorted(np.asarray(SCORE_BUCKETS), scores, side="left")
    counts = np.bincount(np.minimum(index, len(SCORE_BUCKETS) - 1), minlength=len(SCORE_BUCKETS))
    return tuple(float(c) for c in counts)


class PredictionLogSource:
    def __init__(self, store: ArtifactStore) -> None:
        self._store = store
        self._read: dict[tuple[str, str, datetime], pd.DataFrame] = {}

    def _rows(self, series: Series, window: Window) -> pd.DataFrame:
        start = window.end - window.length
        key = (series.model, series.variant, start)
        if key not in self._read:
            self._read[key] = read_prediction_log(
                self._store, series.model, series.variant, since=start
            )
        frame = self._read[key]
        times = pd.to_datetime(frame[names.LOG_TIME], utc=True)
        chosen = (frame[names.LOG_VERSION] == series.version) & (times <= pd.Timestamp(window.end))
        return frame[chosen]

    def _ok(self, series: Series, window: Window) -> pd.DataFrame:
        rows = self._rows(series, window)
        return rows[rows[names.LOG_ERROR].isna()]

    def request_count(self, series: Series, window: Window) -> float:
        return float(len(self._rows(series, window)))

    def error_count(self, series: Series, window: Window) -> float:
        rows = self._rows(series, window)
        if rows.empty:
            raise NoData("no requests logged in the window")
        return float(rows[names.LOG_ERROR].notna().sum())

    def error_rate(self, series: Series, window: Window) -> float:
        rows = self._rows(series, window)
        if rows.empty:
            raise NoData("no requests logged in the window")
        return float(rows[names.LOG_ERROR].notna().mean())

    def latency_quantile(self, series: Series, window: Window, quantile: float) -> float:
        values = pd.to_numeric(self._ok(series, window)[names.LOG_LATENCY_MS], errors="coerce")
        values = values.dropna()
        if values.empty:
            raise NoData("no latency logged in the window")
        return float(values.quantile(quantile)) / 1000

    def _scores(self, series: Series, window: Window) -> pd.Series:
        values = pd.to_numeric(self._ok(series, window)[names.LOG_SCORE], errors="coerce")
        values = values.dropna()
        if values.empty:
            raise NoData("no scores logged in the window")
        return values

    def score_quantile(self, series: Series, window: Window, quantile: float) -> float:
        return float(self._scores(series, window).quantile(quantile))

    def score_mean(self, series: Series, window: Window) -> float:
        return float(self._scores(series, window).mean())

    def score_histogram(self, series: Series, window: Window) -> tuple[float, ...]:
        """Counts per SCORE_BUCKETS bucket (upper bounds inclusive, as Prometheus' `le`)."""
        return score_counts(self._scores(series, window).to_numpy(dtype=float))

    def business_value(self, query_template: str, series: Series, window: Window) -> float:
        raise MetricsUnavailable("business metrics are PromQL: configure Prometheus")

    def mirror_counts(self, model: str, version: str, window: Window) -> MirrorCounts:
        raise MetricsUnavailable("the prediction log does not record the mirror queue")
