"""Pair production's and the shadow's prediction-log rows by request id.

The rule for duplicates: on each side, a request id counts once, for its earliest logged row
(ties: the first in the log). Later rows with the same id (a retried write, a doubled log file)
are counted as duplicates and never paired, so nothing is counted twice. Rows without an id
cannot be paired and are counted apart. Vectorised: one hash pass (pandas factorize) over both
sides' ids and a few integer scatters, no per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class SideCounts:
    """One side's rows: logged, without an id, duplicates of an earlier row, and distinct ids."""

    rows: int
    missing_id: int
    duplicates: int

    @property
    def requests(self) -> int:
        return self.rows - self.missing_id - self.duplicates


@dataclass(frozen=True)
class Pairing:
    """Row positions of each paired request in the production and shadow frames (aligned)."""

    production: SideCounts
    shadow: SideCounts
    production_rows: IntArray
    shadow_rows: IntArray
    shadow_distinct_rows: IntArray  # every distinct shadow request, paired or not

    @property
    def paired(self) -> int:
        return int(self.production_rows.shape[0])

    @property
    def unpaired_production(self) -> int:
        """Production requests the shadow never logged (mirror drops, sampling, shadow down)."""
        return self.production.requests - self.paired

    @property
    def unpaired_shadow(self) -> int:
        """Shadow requests without a production row (production's log lost or sampled out)."""
        return self.shadow.requests - self.paired

    def coverage(self, mirror_share: float = 1.0) -> float:
        """Paired requests / the production requests that should have been mirrored, at most 1.

        NaN when production logged nothing: no evidence is not full coverage.
        """
        expected = self.production.requests * mirror_share
        if expected <= 0:
            return float("nan")
        return min(1.0, self.paired / expected)


def _first_rows(codes: IntArray, times: Any, n_codes: int) -> tuple[IntArray, SideCounts]:
    """For every id code, the row of its earliest entry (-1 if none), and the side's counts."""
    rows = codes.shape[0]
    keys = None if times is None else np.asarray(times)
    if keys is None or bool(np.all(keys[1:] >= keys[:-1])):  # already in time order
        order = np.arange(rows, dtype=np.intp)
    else:
        order = np.argsort(keys, kind="stable").astype(np.intp)
    ordered_codes = codes[order]
    valid = ordered_codes >= 0
    first = np.full(n_codes, -1, dtype=np.intp)
    # Reversed scatter: with repeated indices the last write wins (numpy assigns in order),
    # which is the earliest row in time order.
    first[ordered_codes[valid][::-1]] = order[valid][::-1]
    missing = int(rows - np.count_nonzero(valid))
    distinct = int(np.count_nonzero(first >= 0))
    return first, SideCounts(rows=rows, missing_id=missing, duplicates=rows - missing - distinct)


def _time_key(values: Any) -> Any:
    if values is None:
        return None
    series = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        # NaT sorts last: a row without a time never wins over one with a time.
        as_int = series.to_numpy(dtype="datetime64[ns]").view(np.int64)
        return np.where(series.isna().to_numpy(), np.iinfo(np.int64).max, as_int)
    return series.to_numpy(dtype=np.float64, na_value=np.inf)


def pair_requests(
    *,
    production_ids: Any,
    shadow_ids: Any,
    production_times: Any = None,
    shadow_times: Any = None,
) -> Pairing:
    """Pair by request id under the duplicate rule above. Ids are strings (null or "" = no id);
    times, when given, decide which duplicate is kept (else the first in the log)."""
    production = pd.Series(production_ids)
    shadow = pd.Series(shadow_ids)
    both = pd.concat([production, shadow], ignore_index=True)
    both = both.mask(both == "")  # an empty id is no id
    codes, uniques = pd.factorize(both, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.intp)
    n_codes = len(uniques)
    split = len(production)
    production_first, production_counts = _first_rows(
        codes[:split], _time_key(production_times), n_codes
    )
    shadow_first, shadow_counts = _first_rows(codes[split:], _time_key(shadow_times), n_codes)
    both_sides = (production_first >= 0) & (shadow_first >= 0)
    return Pairing(
        production=production_counts,
        shadow=shadow_counts,
        production_rows=production_first[both_sides],
        shadow_rows=shadow_first[both_sides],
        shadow_distinct_rows=np.sort(shadow_first[shadow_first >= 0]),
    )
