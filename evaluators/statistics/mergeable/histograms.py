"""Binned label histograms per (segment, bootstrap group), for the resamples of the rank
metrics: ROC AUC with `statistics.method: bootstrap`, and average precision.

The bins are the local engine's (compare_engine): `bins_for(rows, cap)` quantile bins of a
segment's own scores, a tie run in the bin of its first row. Pass 2 reads each row's bin from
the merged table (placements.placement_table with `bin_cap`), so every partition bins alike;
the counts are integers and merge by addition, and a replicate reweighs the hashed row groups
(bootstrap.HashedPoisson): the same replicates whatever the partitioning. Point estimates
never use bins (counts.rank_counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from evaluators.metrics.ranking import auc_from_histograms, average_precision_from_histograms
from evaluators.statistics.mergeable.exact import summed_by_key

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]

KINDS = ("auc", "ap")
_REPLICATE_BYTES = 64 << 20  # one chunk of segments' resampled histograms


@dataclass(frozen=True)
class HistogramCounts:
    """Rows per (segment, group, label, bin) of one model, sparse: the filled cells only."""

    cells: IntArray  # ascending flat index into `shape`
    counts: IntArray
    shape: tuple[int, int, int, int]  # (segments, groups, 2 labels, widest bins)

    def __add__(self, other: HistogramCounts) -> HistogramCounts:
        if other.shape != self.shape:
            raise ValueError("histograms of different layouts cannot be merged")
        cells, counts = summed_by_key(
            np.concatenate([self.cells, other.cells]), np.concatenate([self.counts, other.counts])
        )
        return HistogramCounts(cells, counts, self.shape)


def histogram_counts(
    *,
    row_bin: AnyArray,
    width: int,
    n_segments: int,
    label: IntArray,
    codes: IntArray | None,
    group: IntArray,
    groups: int,
) -> HistogramCounts:
    """One partition's counts for one model and segment column; `row_bin` is each row's bin
    from the merged table (PlacementTable.bin), `width` the widest segment's bins
    (PlacementTable.bins), `group` each row's hashed bootstrap group."""
    segment = np.zeros(label.shape[0], np.int64) if codes is None else codes
    cell = ((segment * groups + group) * 2 + label) * width + row_bin
    cells, counts = np.unique(cell, return_counts=True)
    return HistogramCounts(cells, counts.astype(np.int64), (n_segments, groups, 2, width))


def resampled_deltas(
    candidate: HistogramCounts, baseline: HistogramCounts, weights: IntArray, kind: str
) -> FloatArray:
    """(replicates, segments) candidate minus baseline of AUC ("auc") or average precision
    ("ap") in each replicate, from (replicates, groups) weights; a chunk of segments at a time
    so the resampled histograms stay bounded."""
    k, _, _, width = candidate.shape
    replicates = weights.shape[0]
    per_segment = replicates * 2 * max(width, baseline.shape[3]) * 8 * 2
    step = max(1, _REPLICATE_BYTES // per_segment)
    out = np.empty((replicates, k))
    weights_t = np.ascontiguousarray(weights.T, dtype=np.float64)  # (groups, replicates)
    finish = auc_from_histograms if kind == "auc" else average_precision_from_histograms
    for first in range(0, k, step):
        last = min(k, first + step)
        hist = [_resampled(h, weights_t, first, last) for h in (candidate, baseline)]
        values = [finish(h[:, :, 1], h[:, :, 0]) for h in hist]
        out[:, first:last] = values[0] - values[1]
    return out


def _resampled(h: HistogramCounts, weights_t: FloatArray, first: int, last: int) -> FloatArray:
    """(replicates, last - first, 2, width) reweighted histograms of segments first..last-1."""
    _, groups, _, width = h.shape
    segment, rest = np.divmod(h.cells, groups * 2 * width)
    group, column = np.divmod(rest, 2 * width)  # column = label * width + bin
    inside = (segment >= first) & (segment < last)
    matrix = sparse.csr_matrix(
        (
            h.counts[inside].astype(np.float64),
            (group[inside], (segment[inside] - first) * 2 * width + column[inside]),
        ),
        shape=(groups, (last - first) * 2 * width),
    )
    product = np.asarray((matrix.T @ weights_t).T)  # (replicates, cells)
    return product.reshape(-1, last - first, 2, width)
