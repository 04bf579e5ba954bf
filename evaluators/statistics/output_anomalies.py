"""What is wrong with the shadow's answers whatever production says: errors, scores that are
NaN, infinite or out of range, and a constant score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

AnyArray = npt.NDArray[Any]


@dataclass(frozen=True)
class OutputAnomalies:
    """Counts over the shadow's distinct requests. `spread` is max - min of its valid scores
    (NaN with none); `production_spread` the same for production's, to tell a broken model
    from traffic that only ever asks one question."""

    requests: int
    errors: int
    invalid: int
    valid: int
    spread: float
    production_spread: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else float("nan")

    @property
    def invalid_rate(self) -> float:
        answered = self.requests - self.errors
        return self.invalid / answered if answered else float("nan")


def _spread(values: AnyArray) -> float:
    return float(values.max() - values.min()) if values.shape[0] else float("nan")


def output_anomalies(
    *,
    shadow_scores: AnyArray,
    shadow_failed: AnyArray,
    production_scores: AnyArray,
    output_min: float,
    output_max: float,
) -> OutputAnomalies:
    """`shadow_failed` marks requests that logged an error (their score is not judged)."""
    scores = np.asarray(shadow_scores, dtype=np.float64)
    failed = np.asarray(shadow_failed, dtype=bool)
    answered = scores[~failed]
    with np.errstate(invalid="ignore"):
        in_range = np.isfinite(answered) & (answered >= output_min) & (answered <= output_max)
    valid = answered[in_range]
    production = np.asarray(production_scores, dtype=np.float64)
    production = production[np.isfinite(production)]
    return OutputAnomalies(
        requests=int(scores.shape[0]),
        errors=int(np.count_nonzero(failed)),
        invalid=int(answered.shape[0] - valid.shape[0]),
        valid=int(valid.shape[0]),
        spread=_spread(valid),
        production_spread=_spread(production),
    )
