"""Segment and group codes kept compact: the smallest integer type that holds them (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

CodeArray = npt.NDArray[np.signedinteger[Any]]


def compact_codes(codes: npt.NDArray[np.integer[Any]], n_values: int) -> CodeArray:
    """Codes 0..n_values-1 in the smallest signed integer type that holds them: a 10M-row
    column of a few values is 10 MB as int8 instead of 80 MB as int64. Arithmetic on them
    must widen first (`astype(np.int64)`)."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_values <= np.iinfo(dtype).max:
            return codes.astype(dtype, copy=False)
    return codes.astype(np.int64, copy=False)


def compact_to_fit(values: npt.NDArray[np.integer[Any]]) -> CodeArray:
    """Non-negative integers (codes, counts) in the smallest signed type that holds their
    largest."""
    return compact_codes(values, int(values.max()) + 1 if values.size else 1)
