"""The metric registry: pure keyword-only metric functions with a declared direction.

Each metric is registered for one task under the project-wide name (`roc_auc`, `log_loss`, …);
`higher_is_better` says which way is better, so no metric ever needs a `neg_` twin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from evaluators.candidate import Task
from evaluators.metrics import sums
from evaluators.metrics.ranking import weighted_rank_metric

AnyArray = npt.NDArray[Any]
FloatArray = npt.NDArray[np.float64]


class MetricFn(Protocol):
    def __call__(
        self,
        *,
        y_true: AnyArray,
        y_score: AnyArray,
        threshold: float = 0.5,
        sample_weight: AnyArray | None = None,
    ) -> float: ...


RowStatsFn = Callable[..., sums.RowStats]
FinishFn = Callable[[FloatArray], FloatArray]


class UnknownMetricError(ValueError):
    """A metric name is not registered for the model's task."""


@dataclass(frozen=True)
class Metric:
    """One registered metric: how to compute it and how to read it."""

    name: str
    task: Task
    higher_is_better: bool
    best: float
    kind: Literal["sum", "rank"]
    fn: MetricFn
    analytic_interval: str | None = None  # e.g. "DeLong"; None: bootstrap only
    chance: Callable[[AnyArray], float] | None = None  # best value of any constant predictor
    row_stats: RowStatsFn | None = None  # kind "sum": per-row statistics …
    finish: FinishFn | None = None  # … and the metric as a function of their sums


def _sum_metric(row_stats: RowStatsFn, finish: FinishFn) -> MetricFn:
    def metric(
        *,
        y_true: AnyArray,
        y_score: AnyArray,
        threshold: float = 0.5,
        sample_weight: AnyArray | None = None,
    ) -> float:
        stats = row_stats(y_true=y_true, y_score=y_score, threshold=threshold)
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        return float(finish(stats.sums(weight=weight))[0])

    return metric


def _rank_metric(kind: Literal["auc", "ap"], doc: str) -> MetricFn:
    def metric(
        *,
        y_true: AnyArray,
        y_score: AnyArray,
        threshold: float = 0.5,
        sample_weight: AnyArray | None = None,
    ) -> float:
        del threshold  # ranking metrics read the scores' order, not a decision
        return weighted_rank_metric(
            y_true=y_true, y_score=y_score, sample_weight=sample_weight, kind=kind
        )

    metric.__doc__ = doc
    return metric


roc_auc = _rank_metric(
    "auc", "Area under the ROC curve; tied scores count one half. NaN with a single class."
)
pr_auc = _rank_metric("ap", "Average precision (scikit-learn's `average_precision_score`).")


def ovr_roc_auc(
    *,
    y_true: AnyArray,
    y_score: AnyArray,
    threshold: float = 0.5,
    sample_weight: AnyArray | None = None,
) -> float:
    """Macro-averaged one-vs-rest ROC AUC over the columns of `y_score`."""
    del threshold
    labels = np.asarray(y_true)
    scores = np.asarray(y_score, dtype=np.float64)
    per_class = [
        weighted_rank_metric(
            y_true=labels == k, y_score=scores[:, k], sample_weight=sample_weight, kind="auc"
        )
        for k in range(scores.shape[1])
    ]
    return float(np.mean(per_class))


def _shares(y_true: AnyArray) -> FloatArray:
    labels = np.asarray(y_true, dtype=np.int64)
    return np.bincount(labels).astype(np.float64) / max(labels.size, 1)


def _binary_rate(y_true: AnyArray) -> float:
    return float(np.mean(np.asarray(y_true, dtype=np.float64)))


def _entropy(shares: FloatArray) -> float:
    nonzero = shares[shares > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


def _chance_f1(y_true: AnyArray) -> float:
    rate = _binary_rate(y_true)
    return 2 * rate / (1 + rate)


def _chance_macro_f1(y_true: AnyArray) -> float:
    # Predicting class k for every row: its F1 is 2π/(1+π), every other present class scores 0.
    shares = _shares(y_true)
    present = int((shares > 0).sum())
    return float((2 * shares / (1 + shares)).max() / present)


def _chance_mae(y_true: AnyArray) -> float:
    truth = np.asarray(y_true, dtype=np.float64)
    return float(np.abs(truth - np.median(truth)).mean())


def _registry() -> dict[tuple[Task, str], Metric]:
    binary, multi, regression = Task.BINARY, Task.MULTICLASS, Task.REGRESSION

    def summed(
        name: str,
        task: Task,
        row_stats: RowStatsFn,
        finish: FinishFn,
        *,
        higher_is_better: bool,
        best: float,
        chance: Callable[[AnyArray], float] | None,
    ) -> Metric:
        return Metric(
            name=name,
            task=task,
            higher_is_better=higher_is_better,
            best=best,
            kind="sum",
            fn=_sum_metric(row_stats, finish),
            chance=chance,
            row_stats=row_stats,
            finish=finish,
        )

    def rate(y: AnyArray) -> float:
        return _binary_rate(y)

    entries = [
        Metric(
            name="roc_auc",
            task=binary,
            higher_is_better=True,
            best=1.0,
            kind="rank",
            fn=roc_auc,
            analytic_interval="DeLong",
            chance=lambda y: 0.5,
        ),
        Metric(
            name="pr_auc",
            task=binary,
            higher_is_better=True,
            best=1.0,
            kind="rank",
            fn=pr_auc,
            chance=rate,
        ),
        summed(
            "f1",
            binary,
            sums.binary_confusion,
            sums.finish_f1,
            higher_is_better=True,
            best=1.0,
            chance=_chance_f1,
        ),
        summed(
            "precision",
            binary,
            sums.binary_confusion,
            sums.finish_precision,
            higher_is_better=True,
            best=1.0,
            chance=rate,
        ),
        summed(
            "recall",
            binary,
            sums.binary_confusion,
            sums.finish_recall,
            higher_is_better=True,
            best=1.0,
            chance=None,
        ),
        summed(
            "accuracy",
            binary,
            sums.binary_confusion,
            sums.finish_accuracy,
            higher_is_better=True,
            best=1.0,
            chance=lambda y: max(rate(y), 1 - rate(y)),
        ),
        summed(
            "log_loss",
            binary,
            sums.binary_log_loss_terms,
            sums.finish_mean,
            higher_is_better=False,
            best=0.0,
            chance=lambda y: _entropy(np.array([rate(y), 1 - rate(y)])),
        ),
        summed(
            "brier",
            binary,
            sums.brier_terms,
            sums.finish_mean,
            higher_is_better=False,
            best=0.0,
            chance=lambda y: rate(y) * (1 - rate(y)),
        ),
        summed(
            "accuracy",
            multi,
            sums.multiclass_confusion,
            sums.finish_multiclass_accuracy,
            higher_is_better=True,
            best=1.0,
            chance=lambda y: float(_shares(y).max()),
        ),
        summed(
            "macro_f1",
            multi,
            sums.multiclass_confusion,
            sums.finish_macro_f1,
            higher_is_better=True,
            best=1.0,
            chance=_chance_macro_f1,
        ),
        summed(
            "log_loss",
            multi,
            sums.multiclass_log_loss_terms,
            sums.finish_mean,
            higher_is_better=False,
            best=0.0,
            chance=lambda y: _entropy(_shares(y)),
        ),
        Metric(
            name="ovr_roc_auc",
            task=multi,
            higher_is_better=True,
            best=1.0,
            kind="rank",
            fn=ovr_roc_auc,
            chance=lambda y: 0.5,
        ),
        summed(
            "rmse",
            regression,
            sums.squared_error_terms,
            sums.finish_rmse,
            higher_is_better=False,
            best=0.0,
            chance=lambda y: float(np.std(np.asarray(y, dtype=np.float64))),
        ),
        summed(
            "mae",
            regression,
            sums.absolute_error_terms,
            sums.finish_mean,
            higher_is_better=False,
            best=0.0,
            chance=_chance_mae,
        ),
        summed(
            "r2",
            regression,
            sums.r2_terms,
            sums.finish_r2,
            higher_is_better=True,
            best=1.0,
            chance=lambda y: 0.0,
        ),
    ]
    return {(entry.task, entry.name): entry for entry in entries}


REGISTRY: dict[tuple[Task, str], Metric] = _registry()

# Names a registry-wide policy may use for every classifier; they mean the task's own metric.
_ALIASES: dict[tuple[Task, str], str] = {
    (Task.MULTICLASS, "roc_auc"): "ovr_roc_auc",
    (Task.MULTICLASS, "f1"): "macro_f1",
}


def get_metric(name: str, *, task: Task) -> Metric:
    """The metric registered under `name` for `task` (multiclass reads roc_auc as ovr_roc_auc)."""
    key = (task, _ALIASES.get((task, name), name))
    if key not in REGISTRY:
        known = ", ".join(sorted(n for t, n in REGISTRY if t == task))
        raise UnknownMetricError(f"metric {name!r} is not defined for {task.value}; use {known}")
    return REGISTRY[key]


def metrics_for(task: Task) -> list[Metric]:
    """Every metric registered for a task, in registration order."""
    return [metric for (t, _), metric in REGISTRY.items() if t == task]


__all__ = [
    "REGISTRY",
    "Metric",
    "MetricFn",
    "UnknownMetricError",
    "get_metric",
    "metrics_for",
    "ovr_roc_auc",
    "pr_auc",
    "roc_auc",
]
