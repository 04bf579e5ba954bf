"""A window of a production model's traffic, out of the gateways' prediction log.

The log is read once per visit from the first window to judge (`read_since`) and cut into
windows (`window_of`), so catching up after an outage reads each day once. Feature drift is
measured on a uniform sample of the window's requests (`sample_features`: PSI's sampling bias
at 50,000 rows is 2e-4); the row count, the scores and the arrival schema are the window's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from bot.rollout.metrics.prediction_log import read_prediction_log
from evaluators.statistics.drift import ReferenceProfile
from evaluators.statistics.logged_features import logged_context, logged_schema, sample_features
from gateway import names
from gateway.store import ArtifactStore

_TIME = "_time"


@dataclass(frozen=True)
class ProductionWindow:
    start: datetime
    end: datetime
    rows: int
    sample: pd.DataFrame  # the profiled features of a sample of requests, and their scores
    columns: dict[str, str]  # the columns requests arrived with (name → dtype)
    context: list[str]  # which of them are request context, not model inputs (never "added")
    scores: np.ndarray  # every scored request's score


def read_since(store: ArtifactStore, *, model: str, version: str, since: datetime) -> pd.DataFrame:
    """The production requests `version` answered since `since`, with their time parsed."""
    frame = read_prediction_log(store, model, names.VARIANT_PRODUCTION, since=since)
    frame = frame[frame[names.LOG_VERSION] == version]
    return frame.assign(**{_TIME: pd.to_datetime(frame[names.LOG_TIME], utc=True)})


def window_of(
    logged: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    profile: ReferenceProfile,
    score_column: str,
) -> ProductionWindow:
    times = logged[_TIME]
    rows = logged[(times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))]
    all_scores = pd.to_numeric(rows[names.LOG_SCORE], errors="coerce")
    sample = sample_features(rows[names.LOG_FEATURES], profile)
    sample = sample.drop(columns=[score_column], errors="ignore")
    sample[score_column] = all_scores.loc[sample.index].to_numpy(dtype=np.float64, na_value=np.nan)
    scores = all_scores.to_numpy(dtype=np.float64, na_value=np.nan)
    return ProductionWindow(
        start=start,
        end=end,
        rows=len(rows),
        sample=sample.reset_index(drop=True),
        columns=logged_schema(rows[names.LOG_FEATURES]),
        context=logged_context(rows[names.LOG_FEATURES]),
        scores=scores[np.isfinite(scores)],
    )


__all__ = ["ProductionWindow", "read_since", "window_of"]
