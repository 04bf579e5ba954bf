"""The Prometheus metrics source against a real Prometheus backfilled with 26 hours of gateway
metrics (`promtool tsdb create-blocks-from openmetrics`), queried at chosen times: the bot's
clock is the query's evaluation time, so 24-hour windows are tested in seconds."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.base.local_server import free_port
from bot.rollout.metrics import queries
from bot.rollout.metrics.prometheus import PrometheusSource
from bot.rollout.metrics.source import (
    MetricsError,
    MetricsUnavailable,
    MirrorCounts,
    NoData,
    Series,
    Window,
)
from gateway import names
from tests.prometheus_history import at, openmetrics
from tests.prometheus_server import running_prometheus
from tests.traffic_world import require

PRODUCTION = Series("churn", "production", "1.0.0")
CANARY = Series("churn", "canary", "1.1.0")
SHADOW = Series("churn", "shadow", "1.2.0")
HOUR = timedelta(hours=1)


def hour_to(hours: float) -> Window:
    return Window(end=at(hours), length=HOUR)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on a free loopback port, serving the backfilled history."""
    promtool = require("promtool")
    root = tmp_path_factory.mktemp("prometheus")
    (root / "history.txt").write_text(openmetrics())
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "history.txt", "data"],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=60,
    )
    with running_prometheus(
        root,
        "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
        retention="100y",  # the history is fixed in the past
    ) as url:
        yield url


@pytest.fixture
def source(prometheus: str) -> Iterator[PrometheusSource]:
    source = PrometheusSource(prometheus)
    yield source
    source.close()


def test_request_count_over_an_hour_and_over_a_day(source: PrometheusSource) -> None:
    assert source.request_count(PRODUCTION, hour_to(6)) == pytest.approx(36_000)
    day = Window(end=at(25), length=timedelta(hours=24))
    assert source.request_count(PRODUCTION, day) == pytest.approx(864_000)


def test_error_rate_is_read_at_the_clock_time_given(source: PrometheusSource) -> None:
    assert source.error_rate(PRODUCTION, hour_to(6)) == pytest.approx(0.01)
    assert source.error_rate(CANARY, hour_to(8)) == pytest.approx(0.01)
    assert source.error_rate(CANARY, hour_to(25)) == pytest.approx(0.10)


def test_a_series_without_a_single_error_has_an_error_rate_of_zero(
    source: PrometheusSource,
) -> None:
    # The shadow's error counter was never incremented, so it has no series at all.
    assert source.error_rate(SHADOW, hour_to(6)) == 0.0


@pytest.mark.parametrize(
    ("series", "expected"),
    [(PRODUCTION, (0.01, 0.05, 0.1)), (CANARY, (0.025, 0.1, 0.25))],
    ids=["production", "the canary, one bucket slower"],
)
def test_latency_quantiles_come_from_the_histogram(
    source: PrometheusSource, series: Series, expected: tuple[float, float, float]
) -> None:
    got = tuple(source.latency_quantile(series, hour_to(6), q) for q in (0.5, 0.95, 0.99))
    assert got == pytest.approx(expected)


def test_score_mean_and_quantiles(source: PrometheusSource) -> None:
    assert source.score_mean(PRODUCTION, hour_to(6)) == pytest.approx(0.30)
    assert source.score_mean(SHADOW, hour_to(6)) == pytest.approx(0.35)
    # Linear inside the bucket holding the median: 0.1 + 0.15 * (300 - 120) / 240.
    assert source.score_quantile(PRODUCTION, hour_to(6), 0.5) == pytest.approx(0.2125)
    assert source.score_quantile(SHADOW, hour_to(6), 0.5) == pytest.approx(0.23125)


def test_mirror_counts_with_drops_and_before_any_drop(source: PrometheusSource) -> None:
    assert source.mirror_counts("churn", "1.2.0", hour_to(25)) == MirrorCounts(
        mirrored=pytest.approx(36_000), dropped=pytest.approx(180)
    )
    assert source.mirror_counts("churn", "1.2.0", hour_to(6)) == MirrorCounts(
        mirrored=pytest.approx(36_000), dropped=0.0
    )


def test_an_idle_hour_counts_zero_requests_and_has_no_rate_or_latency(
    source: PrometheusSource,
) -> None:
    idle = hour_to(11.5)  # the canary took no traffic from hour 10 to hour 12
    assert source.request_count(CANARY, idle) == 0.0  # the series exists: a true zero
    with pytest.raises(NoData):
        source.error_rate(CANARY, idle)  # 0 / 0 is NaN: no data, not 0% errors
    with pytest.raises(NoData):
        source.latency_quantile(CANARY, idle, 0.99)


@pytest.mark.parametrize(
    "ask",
    [
        lambda s: s.request_count(Series("churn", "canary", "9.9.9"), hour_to(6)),
        lambda s: s.error_rate(Series("churn", "canary", "9.9.9"), hour_to(6)),
        lambda s: s.latency_quantile(Series("fraud", "production", "1.0.0"), hour_to(6), 0.5),
        lambda s: s.score_mean(CANARY, hour_to(6)),  # the canary reports no scores
        lambda s: s.mirror_counts("churn", "9.9.9", hour_to(6)),
        lambda s: s.request_count(PRODUCTION, Window(end=at(-1), length=HOUR)),
        lambda s: s.error_rate(PRODUCTION, Window(end=at(-1), length=HOUR)),
    ],
    ids=[
        "a version with no series",
        "the error rate of a version with no series",
        "a model with no series",
        "a histogram never reported",
        "mirroring to a version never mirrored to",
        "a window before the data",
        "an error rate before the data",
    ],
)
def test_no_series_is_no_data_never_zero(source: PrometheusSource, ask: object) -> None:
    with pytest.raises(NoData):
        ask(source)  # type: ignore[operator]


def test_an_unreachable_prometheus_is_a_clear_error_never_health() -> None:
    down = PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(MetricsUnavailable, match=r"^Prometheus could not be reached$"):
        down.error_rate(CANARY, hour_to(6))
    with pytest.raises(MetricsError):  # what a caller failing closed catches
        down.request_count(CANARY, hour_to(6))
    down.close()


def test_an_answer_larger_than_allowed_and_a_refused_query_are_unavailable(
    prometheus: str,
) -> None:
    small = PrometheusSource(prometheus, max_response_bytes=64)
    with pytest.raises(MetricsUnavailable, match="larger than allowed"):
        small.request_count(PRODUCTION, hour_to(6))
    small.close()
    source = PrometheusSource(prometheus)
    with pytest.raises(MetricsUnavailable, match="refused the query"):
        source.value("sum(", at=at(6))
    with pytest.raises(MetricsUnavailable, match="more than one series"):
        source.value(f"{names.REQUESTS}_total", at=at(6))  # one series per label set
    source.close()


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Series('churn"}', "production", "1.0.0"),
        lambda: Series("churn", "production", "1.0.0 or vector(1)"),
        lambda: Series("churn", "staging", "1.0.0"),
        lambda: Window(end=at(1).replace(tzinfo=None), length=HOUR),
    ],
    ids=["a quote in a model name", "PromQL in a version", "an unknown variant", "a naive time"],
)
def test_names_that_could_change_the_query_are_refused_before_any_query(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


def test_label_values_are_escaped_as_promql_strings() -> None:
    assert queries.selector("m", {"a": 'x"y\\z'}) == 'm{a="x\\"y\\\\z"}'


def test_the_factory_builds_a_source_that_answers(prometheus: str) -> None:
    from bot.rollout.metrics.factory import PrometheusConfig, make_metrics_source

    source = make_metrics_source(PrometheusConfig(url=prometheus))  # type: ignore[arg-type]
    assert source.request_count(PRODUCTION, hour_to(6)) == pytest.approx(36_000)
