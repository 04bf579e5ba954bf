"""The MetricsSource port: the questions shadow and canary ask about live traffic.

Every question is about one series (model, variant, version) over a window that ends at a given
time: the bot's injected clock, never the source's own "now". The answers are numbers, or:

- `NoData` when the source has nothing to say (no series, a window before the data, a ratio or
  quantile of no requests). It is never zero: a canary with no data holds, it does not pass.
- `MetricsUnavailable` when the source cannot be asked (unreachable, an error, an answer too
  large). The caller fails closed: an unreadable metric is never read as healthy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gateway.names import VARIANTS
from gateway.routing import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)
QUANTILES = (0.5, 0.95, 0.99)


class MetricsError(Exception):
    """Either kind of missing answer; catching this alone is failing closed."""


class NoData(MetricsError):
    """The source holds nothing for this question (never the same as zero)."""


class MetricsUnavailable(MetricsError):
    """The source could not be asked or did not answer properly."""


@dataclass(frozen=True)
class Series:
    """One version of a model in one routing slot."""

    model: str
    variant: str
    version: str

    def __post_init__(self) -> None:
        # Label values reach PromQL: only names the routing table itself accepts.
        for value in (self.model, self.version):
            if not _NAME.match(value):
                raise ValueError(f"{value!r} is not a model name or version")
        if self.variant not in VARIANTS:
            raise ValueError(f"{self.variant!r} is not one of {', '.join(VARIANTS)}")


@dataclass(frozen=True)
class Window:
    """The `length` of time that ends at `end` (the bot's clock time, timezone-aware)."""

    end: datetime
    length: timedelta

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError("a window's end must be timezone-aware")
        if not timedelta(seconds=1) <= self.length <= timedelta(days=60):
            raise ValueError("a window lasts between one second and 60 days")


@dataclass(frozen=True)
class MirrorCounts:
    """Requests the gateway queued for the shadow, and those it dropped, in a window."""

    mirrored: float
    dropped: float


class MetricsSource(Protocol):
    def request_count(self, series: Series, window: Window) -> float:
        """Requests answered (or mirrored, for shadow) in the window; 0 only if truly none."""
        ...

    def error_rate(self, series: Series, window: Window) -> float:
        """Errors / requests in the window; NoData when there were no requests."""
        ...

    def error_count(self, series: Series, window: Window) -> float:
        """Errors in the window: 0 when requests came and none failed; NoData without requests."""
        ...

    def latency_quantile(self, series: Series, window: Window, quantile: float) -> float:
        """The latency quantile in seconds (from the histogram's buckets)."""
        ...

    def score_quantile(self, series: Series, window: Window, quantile: float) -> float:
        """A quantile of the positive-class score."""
        ...

    def score_mean(self, series: Series, window: Window) -> float:
        """The mean positive-class score."""
        ...

    def score_histogram(self, series: Series, window: Window) -> tuple[float, ...]:
        """Scores counted per bucket of `gateway.metrics.SCORE_BUCKETS` in the window (not
        cumulative; anything above the last bound counted in the last); NoData without scores."""
        ...

    def business_value(self, query_template: str, series: Series, window: Window) -> float:
        """A team's own metric: `query_template` (from the policy) with `{model}`, `{variant}`,
        `{version}` and `{window}` filled; it must answer one finite sample, else NoData (no
        sample, NaN, infinite) or MetricsUnavailable (several, or a refused query)."""
        ...

    def mirror_counts(self, model: str, version: str, window: Window) -> MirrorCounts:
        """How many requests the gateway mirrored to `version` of `model`, and dropped."""
        ...
