"""The metric registry agrees with scikit-learn and every metric obeys the shared invariants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from evaluators.candidate import Task
from evaluators.metrics.registry import REGISTRY, Metric, UnknownMetricError, get_metric

RNG = np.random.default_rng(7)
N = 400
Y_BIN = RNG.integers(0, 2, N)
# Rounded scores make ties, which every rank metric must handle like scikit-learn.
S_BIN = np.round(np.clip(0.35 * Y_BIN + 0.65 * RNG.random(N), 0, 1), 2)
K = 4
Y_MULTI = RNG.integers(0, K, N)
S_MULTI = RNG.dirichlet(np.ones(K), N)
S_MULTI[np.arange(N), Y_MULTI] += 0.3
S_MULTI /= S_MULTI.sum(axis=1, keepdims=True)
Y_REG = 10 + 3 * RNG.standard_normal(N)
S_REG = Y_REG + RNG.standard_normal(N)
WEIGHTS = RNG.integers(1, 5, N).astype(float)

DATA: dict[Task, tuple[Any, Any]] = {
    Task.BINARY: (Y_BIN, S_BIN),
    Task.MULTICLASS: (Y_MULTI, S_MULTI),
    Task.REGRESSION: (Y_REG, S_REG),
}

Reference = Callable[[Any, Any, Any], float]
REFERENCES: list[tuple[Task, str, Reference]] = [
    (Task.BINARY, "roc_auc", lambda y, s, w: skm.roc_auc_score(y, s, sample_weight=w)),
    (Task.BINARY, "pr_auc", lambda y, s, w: skm.average_precision_score(y, s, sample_weight=w)),
    (Task.BINARY, "f1", lambda y, s, w: skm.f1_score(y, s >= 0.5, sample_weight=w)),
    (Task.BINARY, "precision", lambda y, s, w: skm.precision_score(y, s >= 0.5, sample_weight=w)),
    (Task.BINARY, "recall", lambda y, s, w: skm.recall_score(y, s >= 0.5, sample_weight=w)),
    (Task.BINARY, "accuracy", lambda y, s, w: skm.accuracy_score(y, s >= 0.5, sample_weight=w)),
    (Task.BINARY, "log_loss", lambda y, s, w: skm.log_loss(y, s, sample_weight=w)),
    (Task.BINARY, "brier", lambda y, s, w: skm.brier_score_loss(y, s, sample_weight=w)),
    (
        Task.MULTICLASS,
        "accuracy",
        lambda y, s, w: skm.accuracy_score(y, s.argmax(1), sample_weight=w),
    ),
    (
        Task.MULTICLASS,
        "macro_f1",
        lambda y, s, w: skm.f1_score(y, s.argmax(1), average="macro", sample_weight=w),
    ),
    (Task.MULTICLASS, "log_loss", lambda y, s, w: skm.log_loss(y, s, sample_weight=w)),
    (
        Task.MULTICLASS,
        "ovr_roc_auc",
        lambda y, s, w: skm.roc_auc_score(y, s, multi_class="ovr", sample_weight=w),
    ),
    (
        Task.REGRESSION,
        "rmse",
        lambda y, s, w: skm.root_mean_squared_error(y, s, sample_weight=w),
    ),
    (Task.REGRESSION, "mae", lambda y, s, w: skm.mean_absolute_error(y, s, sample_weight=w)),
    (Task.REGRESSION, "r2", lambda y, s, w: skm.r2_score(y, s, sample_weight=w)),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "with sample weights"])
@pytest.mark.parametrize(
    ("task", "name", "reference"),
    REFERENCES,
    ids=[f"{task.value} {name} agrees with scikit-learn" for task, name, _ in REFERENCES],
)
def test_metric_agrees_with_scikit_learn(
    task: Task, name: str, reference: Reference, weighted: bool
) -> None:
    y, score = DATA[task]
    weight = WEIGHTS if weighted else None
    ours = get_metric(name, task=task).fn(y_true=y, y_score=score, sample_weight=weight)
    assert ours == pytest.approx(reference(y, score, weight), abs=1e-9)


def test_every_registered_metric_has_a_scikit_learn_reference() -> None:
    assert {(task, name) for task, name, _ in REFERENCES} == set(REGISTRY)


def _perfect(task: Task, y: Any) -> Any:
    if task is Task.MULTICLASS:
        return np.eye(K)[y]
    return np.asarray(y, dtype=np.float64)


def _constants(task: Task, y: Any) -> list[Any]:
    """Predictors that say the same for every row."""
    n = len(y)
    if task is Task.BINARY:
        return [np.full(n, c) for c in (0.0, 0.2, float(np.mean(y)), 0.5, 0.9, 1.0)]
    if task is Task.MULTICLASS:
        shares = np.bincount(y, minlength=K) / n
        vectors = [np.full(K, 1 / K), shares, *np.eye(K) * 0.7 + 0.3 / K]
        return [np.tile(v, (n, 1)) for v in vectors]
    return [np.full(n, c) for c in (float(np.mean(y)), float(np.median(y)), 0.0, 12.0)]


def _better_or_equal(metric: Metric, a: float, b: float) -> bool:
    return a >= b - 1e-12 if metric.higher_is_better else a <= b + 1e-12


@pytest.mark.parametrize(
    "metric",
    list(REGISTRY.values()),
    ids=[f"{m.task.value} {m.name} obeys the shared invariants" for m in REGISTRY.values()],
)
def test_registered_metric_obeys_shared_invariants(metric: Metric) -> None:
    y, score = DATA[metric.task]
    value = metric.fn(y_true=y, y_score=score)

    # Shuffling rows changes nothing.
    shuffle = np.random.default_rng(1).permutation(len(y))
    assert metric.fn(y_true=y[shuffle], y_score=score[shuffle]) == pytest.approx(value, abs=1e-12)

    # A perfect predictor reaches the best value, and nothing beats it.
    perfect = metric.fn(y_true=y, y_score=_perfect(metric.task, y))
    assert perfect == pytest.approx(metric.best, abs=1e-12)
    assert _better_or_equal(metric, perfect, value)

    # A predictor that ignores the row is no better than chance.
    if metric.chance is not None:
        chance = metric.chance(y)
        for constant in _constants(metric.task, y):
            assert _better_or_equal(metric, chance, metric.fn(y_true=y, y_score=constant))

    # Integer weights mean repeated rows.
    weight = WEIGHTS.astype(np.int64)
    repeated = metric.fn(y_true=np.repeat(y, weight, axis=0), y_score=np.repeat(score, weight, 0))
    weighted = metric.fn(y_true=y, y_score=score, sample_weight=weight.astype(float))
    assert weighted == pytest.approx(repeated, abs=1e-12)


def test_random_scores_are_no_better_than_chance_on_average() -> None:
    rng = np.random.default_rng(3)
    aucs = [
        get_metric("roc_auc", task=Task.BINARY).fn(y_true=Y_BIN, y_score=rng.random(N))
        for _ in range(200)
    ]
    assert abs(np.mean(aucs) - 0.5) < 0.01


@pytest.mark.parametrize(
    ("name", "task", "expected"),
    [
        ("roc_auc", Task.MULTICLASS, "ovr_roc_auc"),
        ("f1", Task.MULTICLASS, "macro_f1"),
        ("log_loss", Task.BINARY, "log_loss"),
    ],
    ids=[
        "a registry-wide roc_auc means one-vs-rest AUC for a multiclass model",
        "a registry-wide f1 means macro F1 for a multiclass model",
        "a binary name resolves to itself",
    ],
)
def test_metric_names_resolve_per_task(name: str, task: Task, expected: str) -> None:
    assert get_metric(name, task=task).name == expected


def test_an_unknown_or_inapplicable_metric_is_refused_with_the_known_names() -> None:
    with pytest.raises(UnknownMetricError, match="rmse"):
        get_metric("roc_auc", task=Task.REGRESSION)
    with pytest.raises(UnknownMetricError, match="roc_auc"):
        get_metric("neg_log_loss", task=Task.BINARY)


def test_no_metric_name_flips_its_sign() -> None:
    assert not [name for _, name in REGISTRY if name.startswith("neg_")]
