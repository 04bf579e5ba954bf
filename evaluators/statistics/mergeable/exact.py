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
