"""How the resamples of rank metrics bin scores (both engines): quantile bins of a segment's own
scores, about eight rows per bin, at most 1024 overall and 256 per segment, where sampling
noise dwarfs the binning error. Tied scores share a bin. Point estimates never use bins."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

OVERALL_BINS = 1024
SEGMENT_BINS = 256
ROWS_PER_BIN = 8
MIN_BINS = 16


def bins_for(rows: IntArray, *, cap: int) -> IntArray:
    """Quantile bins per segment for the resamples: a power of two near rows/8, capped."""
    target = np.maximum(np.asarray(rows) // ROWS_PER_BIN, MIN_BINS)
    return np.minimum(cap, 2 ** np.floor(np.log2(target)).astype(np.int64))
