"""PromQL for the MetricsSource's questions, built from the names the gateway publishes.

Pure text. Every query sums to one label-less sample, so an answer is one number or nothing.
Label values are validated by `Series` and escaped here as PromQL strings as well.

Counters with labels appear only once incremented (prometheus-client), so when the request
total exists but no error has ever been counted, errors are zero (`or vector(0)`): the total
still decides between a number and no data.

Two questions are not one sample: the score histogram (one sample per bucket bound `le`), and
a team's business metric, whose PromQL comes from the policy with placeholders filled here.
"""

from __future__ import annotations

from bot.rollout.metrics.source import Series, Window
from evaluators.policy import (
    QUERY_LABEL_PLACEHOLDERS,
    QUERY_PLACEHOLDER,
    QUERY_WINDOW_PLACEHOLDER,
    check_query_template,
)
from gateway import names


def escape(value: str) -> str:
    """A PromQL double-quoted string's contents."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(metric: str, labels: dict[str, str]) -> str:
    inside = ",".join(f'{key}="{escape(value)}"' for key, value in sorted(labels.items()))
    return f"{metric}{{{inside}}}"


def duration(window: Window) -> str:
    return f"{int(window.length.total_seconds())}s"


def _labels(series: Series) -> dict[str, str]:
    return {"model": series.model, "variant": series.variant, "version": series.version}


def _increase(metric: str, labels: dict[str, str], window: Window) -> str:
    return f"sum(increase({selector(metric, labels)}[{duration(window)}]))"


def request_count(series: Series, window: Window) -> str:
    return _increase(f"{names.REQUESTS}_total", _labels(series), window)


def error_rate(series: Series, window: Window) -> str:
    errors = _increase(
        f"{names.REQUESTS}_total", {**_labels(series), "outcome": names.OUTCOME_ERROR}, window
    )
    return f"({errors} or vector(0)) / {request_count(series, window)}"


def error_count(series: Series, window: Window) -> str:
    errors = _increase(
        f"{names.REQUESTS}_total", {**_labels(series), "outcome": names.OUTCOME_ERROR}, window
    )
    # A number only when requests came: errors of no request are no data, not zero.
    return f"({errors} or vector(0)) and on() ({request_count(series, window)} > 0)"


def _quantile(metric: str, series: Series, window: Window, quantile: float) -> str:
    if not 0 < quantile < 1:
        raise ValueError("a quantile lies strictly between 0 and 1")
    buckets = selector(f"{metric}_bucket", _labels(series))
    return (
        f"histogram_quantile({quantile!r}, sum by (le) (increase({buckets}[{duration(window)}])))"
    )


def latency_quantile(series: Series, window: Window, quantile: float) -> str:
    return _quantile(names.LATENCY_SECONDS, series, window, quantile)


def score_quantile(series: Series, window: Window, quantile: float) -> str:
    return _quantile(names.SCORE, series, window, quantile)


def score_buckets(series: Series, window: Window) -> str:
    """Cumulative counts per bucket bound, one sample per `le` (de-cumulated by the caller)."""
    buckets = selector(f"{names.SCORE}_bucket", _labels(series))
    return f"sum by (le) (increase({buckets}[{duration(window)}]))"


def score_mean(series: Series, window: Window) -> str:
    total = _increase(f"{names.SCORE}_sum", _labels(series), window)
    count = _increase(f"{names.SCORE}_count", _labels(series), window)
    return f"{total} / {count}"


def mirrored(model: str, version: str, window: Window) -> str:
    return _increase(f"{names.MIRRORED}_total", {"model": model, "version": version}, window)


def mirror_dropped(model: str, window: Window) -> str:
    # Drops are counted per model (the queue is the model's), and only once one happens.
    return f"{_increase(f'{names.MIRROR_DROPPED}_total', {'model': model}, window)} or vector(0)"


def business(template: str, series: Series, window: Window) -> str:
    """A business metric's PromQL with `{model}`, `{variant}`, `{version}` (escaped string
    contents; the template holds the quotes) and `{window}` (`300s`) filled in; ValueError for
    any other placeholder or an unquoted label placeholder."""
    check_query_template(template)
    values = {
        **{key: escape(value) for key, value in _labels(series).items()},
        QUERY_WINDOW_PLACEHOLDER: duration(window),
    }
    assert set(values) == {*QUERY_LABEL_PLACEHOLDERS, QUERY_WINDOW_PLACEHOLDER}
    return QUERY_PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
