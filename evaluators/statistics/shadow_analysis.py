"""From two prediction-log frames (production's and the shadow's rows for one model) to the
evidence shadow is judged on: pairing, coverage, anomalies, flips per threshold and segment,
rank correlation, score shift, input drift. Pure: frames in, `ShadowEvidence` out."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from evaluators.policy import Policy
from evaluators.statistics.drift import (
    CategoricalProfile,
    FeatureDrift,
    ReferenceProfile,
    feature_drift,
)
from evaluators.statistics.logged_features import (
    DRIFT_SAMPLE_ROWS,
    sample_features,
    segment_codes,
)
from evaluators.statistics.output_anomalies import output_anomalies
from evaluators.statistics.paired_outputs import compare_outputs
from evaluators.statistics.pairing import Pairing, pair_requests
from evaluators.statistics.segments import MISSING_LABEL, Partition
from evaluators.statistics.shadow_evidence import (
    LatencyReading,
    NoData,
    SegmentCount,
    ShadowEvidence,
)

# The prediction log's columns, as gateway/names.py publishes them (evaluators may not import
# the gateway; tests/test_shadow_analysis.py checks the two agree).
REQUEST_ID = "request_id"
TIME = "time"
FEATURES = "features"
SCORE = "score"
ERROR = "error"


def _failed(frame: pd.DataFrame, rows: Any) -> np.ndarray[Any, np.dtype[np.bool_]]:
    if ERROR not in frame.columns:
        return np.zeros(len(rows), dtype=bool)
    error = frame[ERROR].iloc[rows].astype("string").fillna("")
    return np.asarray((error != "").to_numpy(dtype=bool))


def _scores(frame: pd.DataFrame, rows: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array(frame[SCORE].iloc[rows].to_numpy(dtype=np.float64, na_value=np.nan))


def _segments(production: pd.DataFrame, pairing: Pairing, columns: list[str]) -> list[Partition]:
    """Partitions of the paired requests by each segment column's logged value."""
    if not columns:
        return []
    partitions: list[Partition] = []
    # One scan of the features text per column, in threads: Arrow's kernels release the GIL.
    with ThreadPoolExecutor(max_workers=min(len(columns), os.cpu_count() or 1)) as pool:
        found = list(pool.map(lambda column: segment_codes(production[FEATURES], column), columns))
    for column, (codes, labels) in zip(columns, found, strict=True):
        paired = codes[pairing.production_rows]
        if (paired < 0).any():
            paired = np.where(paired < 0, len(labels), paired)
            labels.append(MISSING_LABEL)
        partitions.append(Partition(column=column, codes=paired, values=labels))
    return partitions


def _required_counts(
    partitions: list[Partition], profile: ReferenceProfile | None
) -> tuple[list[SegmentCount], list[str]]:
    """Every value the reference knows for a required column (else every value seen) with its
    paired requests; columns never seen in the logged features are listed apart."""
    counts: list[SegmentCount] = []
    missing_columns: list[str] = []
    for part in partitions:
        per_value = np.bincount(part.codes, minlength=part.size)
        seen = {
            value: int(per_value[i])
            for i, value in enumerate(part.values)
            if value != MISSING_LABEL
        }
        if not seen and part.codes.size:  # requests were paired, none carried the column
            missing_columns.append(part.column)
        spec = profile.features.get(part.column) if profile is not None else None
        values = list(spec.categories) if isinstance(spec, CategoricalProfile) else sorted(seen)
        counts.extend(SegmentCount(part.column, value, seen.get(value, 0)) for value in values)
    return counts, missing_columns


def analyse_shadow(
    *,
    production: pd.DataFrame,
    shadow: pd.DataFrame,
    policy: Policy,
    profile: ReferenceProfile | None,
    elapsed: timedelta,
    latency: LatencyReading | NoData,
    thresholds: list[float] | None = None,
    drift_rows: int = DRIFT_SAMPLE_ROWS,
) -> ShadowEvidence:
    """Measure everything `decide_shadow` judges. `thresholds` default to the policy's
    calibration thresholds; drift is skipped (an empty list) without a reference profile."""
    shadow_policy = policy.shadow
    confidence = policy.statistics.confidence
    pairing = pair_requests(
        production_ids=production[REQUEST_ID],
        shadow_ids=shadow[REQUEST_ID],
        production_times=production[TIME] if TIME in production.columns else None,
        shadow_times=shadow[TIME] if TIME in shadow.columns else None,
    )
    # Anomalies over every distinct shadow request, paired or not.
    shadow_first = pairing.shadow_distinct_rows
    anomalies = output_anomalies(
        shadow_scores=_scores(shadow, shadow_first),
        shadow_failed=_failed(shadow, shadow_first),
        production_scores=_scores(production, pairing.production_rows),
        output_min=shadow_policy.anomalies.output_min,
        output_max=shadow_policy.anomalies.output_max,
    )
    partitions = _segments(production, pairing, policy.shadow_segment_columns())
    production_scores = _scores(production, pairing.production_rows)
    shadow_scores = _scores(shadow, pairing.shadow_rows)
    # A failed request's score (if any was logged) is not an answer.
    production_scores[_failed(production, pairing.production_rows)] = np.nan
    shadow_scores[_failed(shadow, pairing.shadow_rows)] = np.nan
    outputs = compare_outputs(
        production=production_scores,
        shadow=shadow_scores,
        thresholds=list(policy.calibration.thresholds if thresholds is None else thresholds),
        segments=partitions,
        confidence=confidence,
    )
    drift: list[FeatureDrift] = []
    if profile is not None and len(production):
        traffic = sample_features(
            production[FEATURES], profile, max_rows=drift_rows, seed=policy.statistics.seed
        )
        drift = feature_drift(profile, traffic)
    segments, missing_columns = _required_counts(partitions, profile)
    return ShadowEvidence(
        elapsed=elapsed,
        production_requests=pairing.production.requests,
        paired=pairing.paired,
        coverage=pairing.coverage(shadow_policy.mirror_share),
        anomalies=anomalies,
        outputs=outputs,
        drift=drift,
        latency=latency,
        segments=segments,
        missing_segment_columns=missing_columns,
        duplicates=pairing.production.duplicates + pairing.shadow.duplicates,
    )
