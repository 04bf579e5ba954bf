"""A Poisson bootstrap whose weights are a hash of (row id, replicate), not a random stream.

A row's weight in a replicate depends only on the seed, its row id and the replicate, so a
replicate's statistic is a sum over rows whatever the partitioning: partitions add up their
weighted sums, integer weights make weighted counts exact, and 1, 3 or 7 partitions in any
order give the same replicates.

Weights: splitmix64 of (seed, row id, replicate) gives 53 uniform bits, turned into a
Poisson(1) count by inverse CDF. With `groups`, rows fall into hashed groups that share a
weight (as intervals.PoissonBootstrap does with random groups): the cost is one pass over the
rows plus groups x replicates, instead of rows x replicates. Term sums are exact fixed-point
integers (`exact.py`), so the replicates are identical, bit for bit, whatever the partitioning.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from evaluators.statistics.mergeable.exact import (
    FIXED_LIMBS,
    fixed_point,
    fixed_to_float,
    grouped_fixed_sum,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]
AnyArray = npt.NDArray[Any]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GROUP_STREAM = 0x67726F7570  # "group": keeps group assignment apart from weights

# Poisson(1) CDF up to 30: P(X > 30) < 1e-33, far below the 2**-53 resolution of a draw.
_POISSON_CDF = np.cumsum(np.exp(-1.0) / special.factorial(np.arange(31)))


def splitmix64(x: U64Array) -> U64Array:
    """The splitmix64 finaliser (Steele, Lea & Flood 2014), elementwise, wrapping mod 2**64."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


def hashed(seed: int, keys: AnyArray, stream: int) -> U64Array:
    """64 random-looking bits per key for (seed, stream)."""
    base = splitmix64(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    base = splitmix64(base ^ np.uint64(stream & 0xFFFFFFFFFFFFFFFF))
    return splitmix64(np.asarray(keys).astype(np.uint64) ^ base)


def poisson_one(bits: U64Array) -> IntArray:
    """Poisson(1) counts from 64 hash bits (inverse CDF of the top 53 bits as a uniform)."""
    uniform = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.searchsorted(_POISSON_CDF, uniform, side="right").astype(np.int64)


@dataclass(frozen=True)
class HashedPoisson:
    """Poisson(1) bootstrap weights keyed by (seed, row id, replicate); `groups` None weighs
    rows one by one, else hashed row groups share a weight."""

    seed: int
    replicates: int
    groups: int | None = None

    def row_group(self, row_id: IntArray) -> IntArray:
        assert self.groups is not None
        return (hashed(self.seed, row_id, _GROUP_STREAM) % np.uint64(self.groups)).astype(np.int64)

    def weights(self, keys: IntArray, replicate: int) -> IntArray:
        """Weights of rows (or groups) `keys` in one replicate."""
        return poisson_one(hashed(self.seed, keys, replicate))

    def group_weights(self) -> IntArray:
        """(replicates, groups) weights of every group (the same for every partition)."""
        assert self.groups is not None
        return _group_weights(self.seed, self.replicates, self.groups)


@lru_cache(maxsize=8)
def _group_weights(seed: int, replicates: int, groups: int) -> IntArray:
    design = HashedPoisson(seed, replicates)
    keys = np.arange(groups, dtype=np.int64)
    out = np.stack([design.weights(keys, r) for r in range(replicates)])
    out.flags.writeable = False  # shared by every caller
    return out


@dataclass(frozen=True)
class BootstrapSums:
    """Exact partial sums for the replicates, per segment.

    With groups: per (segment, group) the rows and the fixed-point limbs of the term sums; the
    replicates reweigh the merged groups once, at the end. Without: per (replicate, segment)
    the weighted rows and weighted limbs. Either way the merged state is integers, identical
    whatever the partitioning, and so are the replicates computed from it.
    """

    design: HashedPoisson
    rows: IntArray  # (k, groups) or (replicates, k)
    limbs: IntArray  # (k, groups, width, FIXED_LIMBS) or (replicates, k, width, FIXED_LIMBS)

    def __add__(self, other: BootstrapSums) -> BootstrapSums:
        return BootstrapSums(self.design, self.rows + other.rows, self.limbs + other.limbs)

    def replicates(self) -> tuple[IntArray, FloatArray]:
        """(replicates, k) weighted rows and (replicates, k, width) weighted term sums."""
        if self.design.groups is None:
            return self.rows, fixed_to_float(self.limbs)
        weights = self.design.group_weights()  # (replicates, groups)
        rows = np.asarray(weights @ self.rows.T, dtype=np.int64)
        sums = np.einsum("rg,kgw->rkw", weights.astype(np.float64), fixed_to_float(self.limbs))
        return rows, np.asarray(sums, dtype=np.float64)

    @property
    def means(self) -> FloatArray:
        """(replicates, k, width) weighted means; NaN where a replicate weighs no row."""
        rows, sums = self.replicates()
        with np.errstate(invalid="ignore", divide="ignore"):
            value = sums / rows[:, :, None]
        return np.asarray(np.where(rows[:, :, None] > 0, value, np.nan), dtype=np.float64)


def bootstrap_sums(
    design: HashedPoisson,
    *,
    row_id: AnyArray,
    terms: FloatArray | None = None,
    codes: AnyArray | None = None,
    n_segments: int = 1,
    fixed: IntArray | None = None,
    group: IntArray | None = None,
) -> BootstrapSums:
    """One partition's exact replicate sums of `terms` (n, width, each in [0, 64)) per segment
    (or of `fixed`, the same terms already in fixed point). `group`: the rows' hashed groups
    (`design.row_group(row_id)`) when the caller has them already.

    Row ids must identify rows across the whole benchmark (not positions in a partition).
    """
    ids = np.asarray(row_id, dtype=np.int64)
    if fixed is None:
        assert terms is not None
        fixed = fixed_point(np.asarray(terms, dtype=np.float64))
    n, width = fixed.shape
    key = np.zeros(n, np.int64) if codes is None else np.asarray(codes, dtype=np.int64)
    if design.groups is not None:
        # Sums per (segment, group); the replicates reweigh the merged groups (`replicates`).
        cell = key * design.groups + (design.row_group(ids) if group is None else group)
        cells = n_segments * design.groups
        rows = np.bincount(cell, minlength=cells).astype(np.int64).reshape(n_segments, -1)
        limbs = np.stack(
            [grouped_fixed_sum(cell, fixed[:, j], cells) for j in range(width)], axis=1
        ).reshape(n_segments, design.groups, width, FIXED_LIMBS)
        return BootstrapSums(design, rows, limbs)
    out_rows = np.empty((design.replicates, n_segments), np.int64)
    out_limbs = np.empty((design.replicates, n_segments, width, FIXED_LIMBS), np.int64)
    for replicate in range(design.replicates):  # vectorised over rows within a replicate
        weight = design.weights(ids, replicate)
        out_rows[replicate] = np.bincount(key, weights=weight, minlength=n_segments)
        for j in range(width):
            out_limbs[replicate, :, j] = grouped_fixed_sum(key, fixed[:, j], n_segments, weight)
    return BootstrapSums(design, out_rows, out_limbs)
