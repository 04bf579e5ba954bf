"""Everything monitoring measures in one window of the prediction log, in one call: input drift
against the training reference profile, prediction drift of the score column against each
score reference (the model's first week, its shadow run), and data quality. Pure: frames and
profiles in, `WindowMeasurements` out; the judgement is evaluators/judgement/monitoring.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evaluators.policy import MonitoringPolicy
from evaluators.statistics.data_quality import DataQuality, data_quality
from evaluators.statistics.drift import ReferenceProfile
from evaluators.statistics.drift_tests import FeatureTests, prediction_drift, window_drift


@dataclass(frozen=True)
class WindowMeasurements:
    drift: tuple[FeatureTests, ...]  # in the profile's feature order
    predictions: dict[str, FeatureTests]  # keyed like `score_references`
    quality: DataQuality


def measure_window(
    profile: ReferenceProfile,
    window: pd.DataFrame,
    *,
    policy: MonitoringPolicy,
    history: Sequence[int],
    score_references: Mapping[str, ReferenceProfile] | None = None,
    ignore: Sequence[str] = (),
    rows: int | None = None,
    columns: Mapping[str, Any] | None = None,
) -> WindowMeasurements:
    """Measure one window. `history` is the rows of past windows (oldest first) for the volume
    check; `score_references` maps a name ("the first week", "shadow") to a `score_profile`
    of the scores to compare with; `ignore` names the window's columns that are not features
    (request id, time), so they are not reported as added. The score column is never a
    feature. When `window` is a sample of the window's requests, `rows` is how many there were
    and `columns` (name → dtype) the schema they arrived with (see `data_quality`)."""
    drift = window_drift(profile, window)
    predictions: dict[str, FeatureTests] = {}
    column = policy.prediction_column
    if score_references and column in window.columns:
        scores = pd.to_numeric(window[column], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        for name, reference in score_references.items():
            predictions[name] = prediction_drift(reference, scores, column=column)
    quality = data_quality(
        profile,
        window,
        drift,
        history=history,
        min_history=policy.quality.volume_min_history,
        keep=policy.quality.volume_history,
        ignore=[*ignore, column],
        rows=rows,
        columns=columns,
    )
    return WindowMeasurements(tuple(drift), predictions, quality)


__all__ = ["WindowMeasurements", "measure_window"]
