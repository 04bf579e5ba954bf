"""Exact integer sums that merge by addition: wide sums of int64 values below 2**62.

A square or cross-product of two placement numerators (each < 2**31) does not fit an int64 once
summed over many rows, so each value is split into a high and a low 31-bit limb and the limbs
are summed separately in int64 (no overflow below 2**32 rows per cell). Merging adds limbs;
the exact total is hi * 2**31 + lo, taken as a Python integer only at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

LIMB_BITS = 31
_LOW = np.int64((1 << LIMB_BITS) - 1)
LIMIT = 1 << 62  # values must be below this


def summed_by_key(keys: IntArray, counts: IntArray) -> tuple[IntArray, IntArray]:
    """Sparse counts merged: the distinct keys, ascending, and each one's total."""
    unique, inverse = np.unique(keys, return_inverse=True)
    summed = np.bincount(inverse, weights=counts, minlength=unique.shape[0]).astype(np.int64)
    return unique.astype(np.int64), summed


def grouped_sum(cell: IntArray, values: IntArray, n_cells: int) -> IntArray:
    """Exact int64 sum of `values` per cell (the caller bounds the totals)."""
    out = np.zeros(n_cells, dtype=np.int64)
    np.add.at(out, cell, values)
    return out


def grouped_wide_sum(cell: IntArray, values: IntArray, n_cells: int) -> IntArray:
    """Per cell, the (hi, lo) limb sums of non-negative `values` < 2**62: shape (n_cells, 2)."""
    out = np.zeros((n_cells, 2), dtype=np.int64)
    np.add.at(out[:, 0], cell, values >> LIMB_BITS)
    np.add.at(out[:, 1], cell, values & _LOW)
    return out


def wide_to_int(limbs: IntArray) -> npt.NDArray[Any]:
    """(…, 2) limb sums -> object array of exact Python integers, shape (…)."""
    hi = limbs[..., 0].astype(object)
    lo = limbs[..., 1].astype(object)
    return np.asarray(hi * (1 << LIMB_BITS) + lo, dtype=object)


# -- fixed-point sums of float terms ---------------------------------------------------------
#
# Float sums depend on the order of the additions, so partitions added up in another grouping
# round differently. Terms (squared errors, log losses: 0 <= t < 64) are instead summed as
# integers in units of 2**-52 (the rounding of one term is below 1.2e-16 absolute, under the
# ulp of the terms themselves above 0.5): totals are then exact and identical whatever the
# partitioning. A fixed-point term (< 2**58) is split into two 29-bit limbs, each summed with
# bincount in float64, which is exact while a call's limb sums stay below 2**53: rows are
# summed in chunks small enough for that, and the chunks' sums added in int64.

FIXED_BITS = 52
FIXED_LIMB_BITS = 29
FIXED_LIMBS = 2
_FIXED_MASK = np.int64((1 << FIXED_LIMB_BITS) - 1)
_MAX_TERM = 64.0
_CHUNK = 1 << (53 - FIXED_LIMB_BITS)  # rows per exact bincount
_MAX_WEIGHT = 64  # Poisson(1) counts stay below 31
_WEIGHTED_CHUNK = _CHUNK // _MAX_WEIGHT


def fixed_point(values: npt.NDArray[np.float64]) -> IntArray:
    """Terms as integers in units of 2**-52 (nearest); refuses terms outside [0, 64)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size and not (np.isfinite(v).all() and v.min() >= 0 and v.max() < _MAX_TERM):
        raise ValueError("terms to sum exactly must be finite, in [0, 64)")
    return np.rint(np.ldexp(v, FIXED_BITS)).astype(np.int64)


def grouped_fixed_sum(
    cell: IntArray, fixed: IntArray, n_cells: int, weights: IntArray | None = None
) -> IntArray:
    """Per cell, the limb sums of fixed-point values (times small integer `weights`):
    shape (n_cells, FIXED_LIMBS), int64, exact."""
    if weights is not None and weights.size and weights.max() >= _MAX_WEIGHT:
        raise ValueError(f"weights of exact weighted sums must be below {_MAX_WEIGHT}")
    step = _CHUNK if weights is None else _WEIGHTED_CHUNK
    out = np.zeros((n_cells, FIXED_LIMBS), dtype=np.int64)
    for a in range(0, fixed.shape[0], step):
        part, where = fixed[a : a + step], cell[a : a + step]
        for j in range(FIXED_LIMBS):
            limb = ((part >> (FIXED_LIMB_BITS * j)) & _FIXED_MASK).astype(np.float64)
            if weights is not None:
                limb *= weights[a : a + step]
            out[:, j] += np.bincount(where, weights=limb, minlength=n_cells).astype(np.int64)
    return out


def limb_totals(limbs: IntArray) -> npt.NDArray[Any]:
    """(…, limbs) sums of 29-bit limbs -> object array of the exact Python integer totals."""
    exact = np.zeros(limbs.shape[:-1], dtype=object)
    for j in range(limbs.shape[-1]):
        exact = exact + limbs[..., j].astype(object) * (1 << (FIXED_LIMB_BITS * j))
    return exact


def _limbs_to_float(limbs: IntArray, fraction_bits: int) -> npt.NDArray[np.float64]:
    # int -> float is correctly rounded; scaling by a power of two is exact.
    exact = limb_totals(limbs)
    as_float = np.asarray([float(x) for x in np.ravel(exact)], dtype=np.float64)
    return np.ldexp(as_float, -fraction_bits).reshape(limbs.shape[:-1])


def fixed_to_float(limbs: IntArray) -> npt.NDArray[np.float64]:
    """(…, FIXED_LIMBS) limb sums -> the totals as floats (one correct rounding each)."""
    return _limbs_to_float(limbs, FIXED_BITS)


# -- wide fixed-point sums of signed terms of any everyday size ------------------------------
#
# Regression terms (targets, their squares, absolute and squared errors) have no fixed range
# and may be negative. Each is rounded to a multiple of 2**-64 (exact for |t| >= 2**-11; below,
# an absolute rounding under 2.8e-20) and split, in float64 and exactly, into five signed
# 29-bit limbs, which cover |t| < 2**64 (1.8e19). Limbs are summed as above; the total is an
# exact integer in units of 2**-64, identical whatever the partitioning.

WIDE_FRACTION_BITS = 64
WIDE_LIMBS = 5
_WIDE_MAX = 2.0**64
_LIMB = 2.0**FIXED_LIMB_BITS


def wide_limbs(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(n, WIDE_LIMBS) signed limbs: value ≈ Σ_j limb_j 2**(29 j - 64), each |limb_j| < 2**29;
    refuses terms that are not finite or not below 2**64 in size."""
    v = np.asarray(values, dtype=np.float64)
    if v.size and not (np.isfinite(v).all() and np.abs(v).max() < _WIDE_MAX):
        raise ValueError("terms to sum exactly must be finite and below 1.8e19 in size")
    # Scaling by a power of two, floor and fmod of integers in float64 are all exact.
    scaled = np.rint(np.ldexp(np.abs(v), WIDE_FRACTION_BITS))
    out = np.empty((v.shape[0], WIDE_LIMBS), dtype=np.float64)
    for j in range(WIDE_LIMBS):
        out[:, j] = np.fmod(scaled, _LIMB)
        scaled = np.floor(np.ldexp(scaled, -FIXED_LIMB_BITS))
    out *= np.sign(v)[:, None]
    return out


def grouped_wide_fixed_sum(
    cell: IntArray, values: npt.NDArray[np.float64], n_cells: int
) -> IntArray:
    """Per cell, the exact limb sums of `values`: shape (n_cells, WIDE_LIMBS), int64."""
    limbs = wide_limbs(values)
    out = np.zeros((n_cells, WIDE_LIMBS), dtype=np.int64)
    for a in range(0, limbs.shape[0], _CHUNK):  # each bincount's sums stay below 2**53
        where = cell[a : a + _CHUNK]
        for j in range(WIDE_LIMBS):
            found = np.bincount(where, weights=limbs[a : a + _CHUNK, j], minlength=n_cells)
            out[:, j] += found.astype(np.int64)
    return out


def wide_to_float(limbs: IntArray) -> npt.NDArray[np.float64]:
    """(…, WIDE_LIMBS) limb sums -> the totals as floats (one correct rounding each)."""
    return _limbs_to_float(limbs, WIDE_FRACTION_BITS)
