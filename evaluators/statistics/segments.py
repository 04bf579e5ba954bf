"""Segments: every value of every segment column, who is big enough to judge, and outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evaluators.report import Outcome
from evaluators.statistics.codes import CodeArray, compact_codes

IntArray = npt.NDArray[np.int64]
MISSING_LABEL = "(missing)"


@dataclass(frozen=True)
class Partition:
    """One segment column as integer codes 0..k-1 (one per row) and the value each code names."""

    column: str
    codes: CodeArray  # compact (see compact_codes)
    values: list[str]

    @property
    def size(self) -> int:
        return len(self.values)


def partition(column: str, values: pd.Series[Any]) -> Partition:
    """Codes in sorted value order; missing values form their own segment, listed last."""
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    labels = [str(value) for value in uniques]
    codes = np.asarray(codes)
    if (codes < 0).any():
        codes = np.where(codes < 0, len(labels), codes)
        labels.append(MISSING_LABEL)
    return Partition(column=column, codes=compact_codes(codes, len(labels)), values=labels)


def partitions(frame: pd.DataFrame | None, *, n_rows: int) -> list[Partition]:
    """One partition per column of the benchmark's segment columns (same row order)."""
    if frame is None:
        return []
    if len(frame) != n_rows:
        raise ValueError(f"segments has {len(frame)} rows, predictions have {n_rows}")
    return [partition(str(name), frame[name]) for name in frame.columns]


def eligible(
    *, rows: IntArray, positives: IntArray | None, min_size: int, min_positives: int
) -> npt.NDArray[np.bool_]:
    """Segments big enough to judge. Binary also needs min_positives and two rows of each class.

    Two of each class is what a paired AUC variance needs at the very least.
    """
    ok = rows >= min_size
    if positives is not None:
        negatives = rows - positives
        ok &= (positives >= max(min_positives, 2)) & (negatives >= 2)
    return np.asarray(ok)


def judge(
    *,
    low: float,
    high: float,
    higher_is_better: bool,
    margin: float,
    tolerance: float,
    significant: bool = True,
) -> Outcome:
    """IMPROVED if the interval is beyond +margin, REGRESSED if beyond -tolerance (gain terms)."""
    gain_low, gain_high = (low, high) if higher_is_better else (-high, -low)
    if not (np.isfinite(gain_low) and np.isfinite(gain_high)):
        return Outcome.UNCHANGED
    if significant and gain_low > margin:
        return Outcome.IMPROVED
    if significant and gain_high < -tolerance:
        return Outcome.REGRESSED
    return Outcome.UNCHANGED


def segment_outcome(outcomes: list[Outcome]) -> Outcome:
    """A segment regresses if any metric does, improves only if every metric does."""
    if not outcomes:
        return Outcome.TOO_SMALL
    if Outcome.REGRESSED in outcomes:
        return Outcome.REGRESSED
    if all(outcome is Outcome.IMPROVED for outcome in outcomes):
        return Outcome.IMPROVED
    return Outcome.UNCHANGED
