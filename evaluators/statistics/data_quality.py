"""Data quality of one window of traffic against the training reference profile: missing
values, values outside the reference range, unseen categories, schema changes, and traffic
volume against its usual level. Pure: a profile and a frame (or counts) in, numbers out.

The per-feature shares come from the drift pass (`FeatureTests`: one binning of each column
serves both); this module adds what drift does not see, and puts the rates beside their
reference so a judge can compare them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluators.statistics.drift import CategoricalProfile, NumericProfile, ReferenceProfile
from evaluators.statistics.drift_tests import FeatureTests

Kind = Literal["numeric", "categorical"]
# A schema listing more columns than this is not one to list in full.
MAX_LISTED_COLUMNS = 50
# Column names come from traffic: cut before they are kept.
MAX_NAME = 200


@dataclass(frozen=True)
class ColumnQuality:
    """One profiled feature in one window. `out_of_range` is for numeric features (share
    outside the reference's [min, max]), `unseen` for categorical ones (share in categories the
    profile does not name, beyond the reference's own "other" share)."""

    feature: str
    kind: Kind
    rows: int
    missing_share: float
    reference_missing_share: float
    out_of_range: float | None
    unseen: float | None

    @property
    def missing_increase(self) -> float:
        return self.missing_share - self.reference_missing_share


@dataclass(frozen=True)
class Retyped:
    column: str
    expected: Kind
    found: str  # the dtype seen, cut to MAX_NAME


@dataclass(frozen=True)
class SchemaChange:
    """Columns the reference profiles that the window lacks, columns it adds, columns whose
    type no longer matches (a numeric feature arriving as text, say). Lists are sorted and cut
    to MAX_LISTED_COLUMNS; the counts are complete."""

    missing: tuple[str, ...]
    added: tuple[str, ...]
    retyped: tuple[Retyped, ...]
    missing_count: int
    added_count: int

    @property
    def changed(self) -> bool:
        return bool(self.missing_count or self.added_count or self.retyped)


@dataclass(frozen=True)
class Volume:
    """Rows in the window against the usual level: the median of the past windows' rows
    (robust to one outage or spike). `ratio` None: too little history to judge."""

    rows: int
    usual: float | None
    ratio: float | None


@dataclass(frozen=True)
class DataQuality:
    columns: tuple[ColumnQuality, ...]
    schema: SchemaChange
    volume: Volume


def _kind_of(dtype: Any) -> Kind:
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return "numeric" if numeric else "categorical"


def schema_changes(
    profile: ReferenceProfile, columns: Mapping[str, Any], *, ignore: Sequence[str] = ()
) -> SchemaChange:
    """Compare the window's columns (name → dtype) with the profiled features. `ignore` names
    columns that are not features (request id, time, score) so they are not "added"."""
    # Names are compared as kept (cut to MAX_NAME), on both sides.
    expected = {name[:MAX_NAME]: spec for name, spec in profile.features.items()}
    seen = {str(name)[:MAX_NAME]: dtype for name, dtype in columns.items()}
    skip = {str(name)[:MAX_NAME] for name in ignore}
    missing = sorted(name for name in expected if name not in seen)
    added = sorted(name for name in seen if name not in expected and name not in skip)
    retyped = []
    for name, spec in expected.items():
        if name in seen and spec.kind == "numeric" and _kind_of(seen[name]) != "numeric":
            # A categorical feature arriving as numbers is still comparable as text; a numeric
            # one arriving as text is not, so only that direction is a change.
            retyped.append(Retyped(name, spec.kind, str(seen[name])[:MAX_NAME]))
    return SchemaChange(
        missing=tuple(missing[:MAX_LISTED_COLUMNS]),
        added=tuple(added[:MAX_LISTED_COLUMNS]),
        retyped=tuple(retyped[:MAX_LISTED_COLUMNS]),
        missing_count=len(missing),
        added_count=len(added),
    )


def column_quality(profile: ReferenceProfile, drift: Sequence[FeatureTests]) -> list[ColumnQuality]:
    """Missing, out-of-range and unseen shares of each feature, from the window's drift pass."""
    found = []
    for tests in drift:
        spec = profile.features[tests.feature]
        unseen = None
        if isinstance(spec, CategoricalProfile) and tests.unseen_share is not None:
            unseen = max(tests.unseen_share - spec.other_share, 0.0)
        out_of_range = tests.outside_share if isinstance(spec, NumericProfile) else None
        if isinstance(spec, NumericProfile) and out_of_range is None:
            out_of_range = 0.0  # no finite value in the window: nothing out of range
        found.append(
            ColumnQuality(
                feature=tests.feature,
                kind=tests.kind,
                rows=tests.rows,
                missing_share=tests.missing_share,
                reference_missing_share=spec.missing_share,
                out_of_range=out_of_range,
                unseen=unseen,
            )
        )
    return found


def volume(rows: int, history: Sequence[int], *, min_history: int, keep: int) -> Volume:
    """This window's rows against the median of the last `keep` windows' (oldest first)."""
    past = [count for count in history[-keep:] if count >= 0]
    if len(past) < min_history:
        return Volume(rows, None, None)
    usual = float(np.median(past))
    # No usual traffic: any rows at all are infinitely above it.
    ratio = rows / usual if usual > 0 else (1.0 if rows == 0 else math.inf)
    return Volume(rows, usual, ratio)


def data_quality(
    profile: ReferenceProfile,
    window: pd.DataFrame,
    drift: Sequence[FeatureTests],
    *,
    history: Sequence[int],
    min_history: int,
    keep: int,
    ignore: Sequence[str] = (),
    rows: int | None = None,
    columns: Mapping[str, Any] | None = None,
) -> DataQuality:
    """Everything data quality measures in one window; `drift` is `window_drift(profile,
    window)` (computed once, shared). When `window` is a sample, `rows` is the window's real
    row count and `columns` (name → dtype) the schema its requests arrived with."""
    seen = dict(window.dtypes.items()) if columns is None else columns
    return DataQuality(
        columns=tuple(column_quality(profile, drift)),
        schema=schema_changes(profile, seen, ignore=ignore),
        volume=volume(
            len(window) if rows is None else rows, history, min_history=min_history, keep=keep
        ),
    )


__all__ = [
    "ColumnQuality",
    "DataQuality",
    "Retyped",
    "SchemaChange",
    "Volume",
    "column_quality",
    "data_quality",
    "schema_changes",
    "volume",
]
