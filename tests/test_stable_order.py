"""The fast score sort gives exactly what numpy's stable argsort gives, whatever the scores."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.candidate import Task
from evaluators.metrics.ranking import stable_order
from evaluators.policy import Policy
from evaluators.statistics.compare import compare

RNG = np.random.default_rng(7)
N = 300_000


@pytest.mark.parametrize(
    "scores",
    [
        RNG.random(N),
        RNG.normal(0, 1e6, N),
        np.round(RNG.random(N), 2),  # heavy ties
        np.where(RNG.random(N) < 0.5, -0.0, 0.0),  # signed zeros are equal scores
        np.concatenate([[np.inf, -np.inf], RNG.random(N - 2)]),
        1.0 + RNG.integers(0, 3, N) * np.finfo(float).eps,  # neighbours that collide in the key
        RNG.random(50),  # small input: the fallback
    ],
    ids=[
        "uniform",
        "wide range",
        "many ties",
        "signed zeros",
        "infinities",
        "colliding neighbours",
        "small input",
    ],
)
def test_stable_order_matches_numpys_stable_argsort(scores: np.ndarray) -> None:
    order, sorted_scores = stable_order(scores.astype(np.float64))
    expected = np.argsort(scores, kind="stable")
    assert np.array_equal(order, expected)
    assert np.array_equal(sorted_scores, scores[expected])


def test_tied_and_untied_scores_give_the_same_auc_as_their_tie_free_twins() -> None:
    # The engine takes a faster path when no score is tied; a tiny jitter that changes no
    # order must not change the result beyond rounding.
    y = (RNG.random(20_000) < 0.3).astype(np.int64)
    cand = np.clip(0.3 * y + RNG.random(20_000) * 0.7, 0, 1)
    base = np.clip(0.2 * y + RNG.random(20_000) * 0.8, 0, 1)
    tied = compare(
        y_true=y,
        candidate=np.round(cand, 3),
        baseline=np.round(base, 3),
        segments=None,
        policy=Policy(),
        task=Task.BINARY,
    )
    untied = compare(
        y_true=y, candidate=cand, baseline=base, segments=None, policy=Policy(), task=Task.BINARY
    )
    auc_tied = next(m for m in tied.overall if m.metric == "roc_auc")
    auc_untied = next(m for m in untied.overall if m.metric == "roc_auc")
    assert abs(auc_tied.delta - auc_untied.delta) < 2e-3
    assert (
        abs((auc_tied.ci_high - auc_tied.ci_low) - (auc_untied.ci_high - auc_untied.ci_low)) < 2e-3
    )
