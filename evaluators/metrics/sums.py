"""Metrics that are functions of summed per-row statistics (confusion counts or loss terms).

Summing is what makes them cheap to group by segment and to bootstrap: a segment's value, or a
resample's, is `finish(sums)` where `sums` adds up the rows' statistics with any weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyArray = npt.NDArray[Any]


@dataclass(frozen=True)
class RowStats:
    """Per-row sufficient statistics: a cell index to count, or numeric terms to add up.

    `terms` holds `width` columns of shape (n,); None stands for a column of ones (each row
    adds 1), which is counted instead of stored: at 10M rows it saves 80 MB per column.
    """

    width: int
    cells: IntArray | None = None  # (n,) cell of each row, 0..width-1
    terms: tuple[FloatArray | None, ...] | None = None

    def sums(
        self, *, key: IntArray | None = None, n_keys: int = 1, weight: FloatArray | None = None
    ) -> FloatArray:
        """Weighted sums of the statistics for each key value: shape (n_keys, width)."""
        if self.cells is not None:
            if key is None:
                index = self.cells
            else:
                index = np.multiply(key, self.width, dtype=np.int64)  # key may be compact
                index += self.cells
            counted = np.bincount(index, weights=weight, minlength=n_keys * self.width)
            return counted.astype(np.float64).reshape(n_keys, self.width)
        assert self.terms is not None
        out = np.empty((n_keys, self.width))
        for column, term in enumerate(self.terms):
            # A ones column times a weight is the weight itself (bit for bit).
            values = weight if term is None else term if weight is None else term * weight
            if key is not None:
                out[:, column] = np.bincount(key, weights=values, minlength=n_keys)
            elif values is not None:
                out[0, column] = values.sum()
            else:
                out[0, column] = float(self.rows)
        return out

    @property
    def rows(self) -> int:
        if self.cells is not None:
            return int(self.cells.shape[0])
        return next(int(term.shape[0]) for term in self.terms or () if term is not None)


def _ratio(numerator: AnyArray, denominator: AnyArray) -> FloatArray:
    # scikit-learn's zero_division default: an undefined ratio counts as 0.
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    safe = np.where(den > 0, den, 1.0)
    return np.where(den > 0, num / safe, 0.0)


def _mean(sums: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(sums[..., 1] / sums[..., 0], dtype=np.float64)


# Binary confusion cells: 2 * label + predicted.
_TN, _FP, _FN, _TP = 0, 1, 2, 3


def binary_confusion(*, y_true: AnyArray, y_score: AnyArray, threshold: float) -> RowStats:
    """Cell = 2*label + (score >= threshold)."""
    cells = np.multiply(np.asarray(y_true), 2, dtype=np.int64)
    cells += np.asarray(y_score) >= threshold
    return RowStats(width=4, cells=cells)


def finish_accuracy(sums: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        correct = sums[..., _TN] + sums[..., _TP]
        return np.asarray(correct / sums.sum(axis=-1), dtype=np.float64)


def finish_precision(sums: FloatArray) -> FloatArray:
    return _ratio(sums[..., _TP], sums[..., _TP] + sums[..., _FP])


def finish_recall(sums: FloatArray) -> FloatArray:
    return _ratio(sums[..., _TP], sums[..., _TP] + sums[..., _FN])


def finish_f1(sums: FloatArray) -> FloatArray:
    tp = sums[..., _TP]
    return _ratio(2 * tp, 2 * tp + sums[..., _FP] + sums[..., _FN])


def _clip(probability: AnyArray) -> FloatArray:
    eps = np.finfo(np.float64).eps
    return np.clip(np.asarray(probability, dtype=np.float64), eps, 1 - eps)


def binary_log_loss_terms(*, y_true: AnyArray, y_score: AnyArray, threshold: float) -> RowStats:
    """[1, -log p(true class)], probabilities clipped to [eps, 1-eps] as scikit-learn does."""
    del threshold
    score = np.asarray(y_score, dtype=np.float64)
    # In one buffer: p(true class), clipped, -log.
    loss = np.subtract(1.0, score)
    np.copyto(loss, score, where=np.asarray(y_true) == 1)
    eps = np.finfo(np.float64).eps
    np.clip(loss, eps, 1 - eps, out=loss)
    np.log(loss, out=loss)
    np.negative(loss, out=loss)
    return RowStats(width=2, terms=(None, loss))


def brier_terms(*, y_true: AnyArray, y_score: AnyArray, threshold: float) -> RowStats:
    """[1, (p - y)^2]."""
    del threshold
    error = np.subtract(np.asarray(y_score, dtype=np.float64), np.asarray(y_true), dtype=np.float64)
    return RowStats(width=2, terms=(None, np.multiply(error, error, out=error)))


def finish_mean(sums: FloatArray) -> FloatArray:
    return _mean(sums)


def multiclass_confusion(*, y_true: AnyArray, y_score: AnyArray, threshold: float) -> RowStats:
    """Cell = k*label + argmax class."""
    del threshold
    scores = np.asarray(y_score)
    classes = scores.shape[1]
    predicted = np.argmax(scores, axis=1).astype(np.int64)
    return RowStats(
        width=classes * classes, cells=classes * np.asarray(y_true, dtype=np.int64) + predicted
    )


def _square(sums: FloatArray) -> FloatArray:
    classes = round(float(np.sqrt(sums.shape[-1])))
    return sums.reshape((*sums.shape[:-1], classes, classes))


def finish_multiclass_accuracy(sums: FloatArray) -> FloatArray:
    matrix = _square(sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        trace = np.trace(matrix, axis1=-2, axis2=-1)
        return np.asarray(trace / matrix.sum(axis=(-2, -1)), dtype=np.float64)


def finish_macro_f1(sums: FloatArray) -> FloatArray:
    matrix = _square(sums)
    tp = np.diagonal(matrix, axis1=-2, axis2=-1)
    fp = matrix.sum(axis=-2) - tp
    fn = matrix.sum(axis=-1) - tp
    # scikit-learn averages over the classes seen in y_true or y_pred only.
    present = (tp + fp + fn) > 0
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((f1 * present).sum(axis=-1) / present.sum(axis=-1), dtype=np.float64)


def multiclass_log_loss_terms(*, y_true: AnyArray, y_score: AnyArray, threshold: float) -> RowStats:
    """[1, -log p(true class)], clipped to [eps, 1-eps]."""
    del threshold
    scores = np.asarray(y_score, dtype=np.float64)
    labels = np.asarray(y_true, dtype=np.int64)
    chosen = np.take_along_axis(scores, labels[:, None], axis=1)[:, 0]
    loss = -np.log(_clip(chosen))
    return RowStats(width=2, terms=(None, loss))


def squared_error_terms(*, y_true: AnyArray, y_score: AnyArray, threshold: float) -> RowStats:
    """[1, (y - prediction)^2]."""
    del threshold
    error = np.asarray(y_true, dtype=np.float64) - np.asarray(y_score, dtype=np.float64)
    return RowStats(width=2, terms=(None, np.multiply(error, error, out=error)))


def absolute_error_terms(*, y_true: AnyArray, y_score: AnyArray, threshold: float) -> RowStats:
    """[1, |y - prediction|]."""
    del threshold
    error = np.abs(np.asarray(y_true, dtype=np.float64) - np.asarray(y_score, dtype=np.float64))
    return RowStats(width=2, terms=(None, error))


def finish_rmse(sums: FloatArray) -> FloatArray:
    return np.asarray(np.sqrt(_mean(sums)), dtype=np.float64)


def r2_terms(*, y_true: AnyArray, y_score: AnyArray, threshold: float) -> RowStats:
    """[1, y - c, (y - c)^2, (y - prediction)^2]; c = mean(y) keeps the sums well conditioned."""
    del threshold
    truth = np.asarray(y_true, dtype=np.float64)
    centred = truth - truth.mean() if truth.size else truth
    error = truth - np.asarray(y_score, dtype=np.float64)
    return RowStats(
        width=4,
        terms=(None, centred, centred * centred, error * error),
    )


def finish_r2(sums: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        total = sums[..., 2] - sums[..., 1] ** 2 / sums[..., 0]
        return np.asarray(1.0 - sums[..., 3] / total, dtype=np.float64)
