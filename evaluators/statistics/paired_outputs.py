"""The candidate's scores against production's on the same requests: decision flips at each
threshold (overall and per segment), Spearman rank correlation, and the mean score shift."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from evaluators.statistics.segments import Partition

FloatArray = npt.NDArray[np.float64]
AnyArray = npt.NDArray[Any]


@dataclass(frozen=True)
class FlipRate:
    """Paired requests on different sides of `threshold`; `column`/`value` name a segment
    (None: all requests). `low`/`high`: Wilson interval at the confidence level."""

    threshold: float
    column: str | None
    value: str | None
    pairs: int
    flips: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.flips / self.pairs if self.pairs else float("nan")


@dataclass(frozen=True)
class ScoreShift:
    """Mean of shadow score - production score, with its normal interval."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class OutputComparison:
    pairs: int  # paired requests with a finite score on both sides
    flips: list[FlipRate]
    spearman: float
    shift: ScoreShift


def wilson_interval(
    successes: AnyArray, trials: AnyArray, *, confidence: float
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval (Wilson 1927), vectorised; NaN where there are no trials.

    Chosen over the normal interval because flip counts are often 0 or tiny, where the normal
    interval collapses to a point.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = float(special.ndtri(0.5 + confidence / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def average_ranks(values: FloatArray) -> FloatArray:
    """Ranks 1..n, ties sharing their mean rank (as scipy.stats.rankdata's default)."""
    n = values.shape[0]
    order = np.argsort(values)  # ties get their mean rank below, so stability is not needed
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    sizes = np.diff(np.append(starts, n))
    mean_rank = starts + (sizes + 1) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, sizes)
    return ranks


def spearman(a: FloatArray, b: FloatArray) -> float:
    """Spearman's rank correlation; NaN when either side is constant or there are < 2 pairs."""
    if a.shape[0] < 2:
        return float("nan")
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = math.sqrt(float(np.dot(ra, ra)) * float(np.dot(rb, rb)))
    return float(np.dot(ra, rb) / denominator) if denominator > 0 else float("nan")


def score_shift(production: FloatArray, shadow: FloatArray, *, confidence: float) -> ScoreShift:
    n = production.shape[0]
    if n == 0:
        return ScoreShift(float("nan"), float("nan"), float("nan"))
    difference = shadow - production
    mean = float(difference.mean())
    if n < 2:
        return ScoreShift(mean, float("nan"), float("nan"))
    se = float(difference.std(ddof=1)) / math.sqrt(n)
    z = float(special.ndtri(0.5 + confidence / 2))
    return ScoreShift(mean, mean - z * se, mean + z * se)


def _flip_rates(
    flipped: npt.NDArray[np.bool_],
    *,
    threshold: float,
    segments: list[Partition],
    confidence: float,
) -> list[FlipRate]:
    n = flipped.shape[0]
    total = int(np.count_nonzero(flipped))
    low, high = wilson_interval(np.array([total]), np.array([n]), confidence=confidence)
    rates = [FlipRate(threshold, None, None, n, total, float(low[0]), float(high[0]))]
    for part in segments:
        pairs = np.bincount(part.codes, minlength=part.size)
        flips = np.bincount(part.codes[flipped], minlength=part.size)
        lows, highs = wilson_interval(flips, pairs, confidence=confidence)
        rates.extend(
            FlipRate(
                threshold,
                part.column,
                value,
                int(pairs[i]),
                int(flips[i]),
                float(lows[i]),
                float(highs[i]),
            )
            for i, value in enumerate(part.values)
        )
    return rates


def compare_outputs(
    *,
    production: AnyArray,
    shadow: AnyArray,
    thresholds: list[float],
    segments: list[Partition],
    confidence: float,
) -> OutputComparison:
    """Compare paired scores (aligned arrays; segments' codes aligned with them). Pairs where
    either score is not finite (an error, a NaN) are left out here; they are anomalies."""
    p = np.asarray(production, dtype=np.float64)
    s = np.asarray(shadow, dtype=np.float64)
    keep = np.isfinite(p) & np.isfinite(s)
    if not keep.all():
        p, s = p[keep], s[keep]
        segments = [
            Partition(column=part.column, codes=part.codes[keep], values=part.values)
            for part in segments
        ]
    flips: list[FlipRate] = []
    for threshold in thresholds:
        flipped = (p >= threshold) != (s >= threshold)
        flips.extend(
            _flip_rates(flipped, threshold=threshold, segments=segments, confidence=confidence)
        )
    return OutputComparison(
        pairs=int(p.shape[0]),
        flips=flips,
        spearman=spearman(p, s),
        shift=score_shift(p, s, confidence=confidence),
    )
