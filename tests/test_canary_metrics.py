"""The canary's metric questions (error count, score histogram, business metrics) against a real
Prometheus backfilled with four hours of gateway metrics (`promtool tsdb create-blocks-from
openmetrics`), queried at chosen times: the window ends at the bot's clock, never Prometheus'.

The history, one sample a minute, chosen so the right answers are known exactly:
- churn 1.0.0, production: 600 requests a minute, 6 errors; scores in the gateway's 20 buckets
  (PRODUCTION_SCORES a minute); 120 orders a minute (a team's own counter);
- churn 1.1.0, canary: 60 a minute, 3 errors until minute 90, idle (counters flat) until minute
  120, then 6 errors a minute; 59 scores a minute in the buckets and 1 above the last bound;
  10 orders a minute;
- churn 1.2.0, canary: 30 requests a minute, never an error (no error series), no scores;
- legacy 0.9.0, production: a score histogram with other buckets than the gateway's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.rollout.metrics import queries
from bot.rollout.metrics.prometheus import PrometheusSource
from bot.rollout.metrics.source import MetricsUnavailable, NoData, Series, Window
from gateway import names
from gateway.metrics import SCORE_BUCKETS
from tests.prometheus_server import running_prometheus
from tests.traffic_world import require

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
MINUTES = 240
PRODUCTION = Series("churn", "production", "1.0.0")
CANARY = Series("churn", "canary", "1.1.0")
QUIET = Series("churn", "canary", "1.2.0")
LEGACY = Series("legacy", "production", "0.9.0")
PRODUCTION_SCORES = (60,) * 5 + (40,) * 5 + (20,) * 5 + (0,) * 5  # 600 a minute
CANARY_SCORES = (3,) * 19 + (2,)  # 59 a minute, and 1 above 1.0
ORDERS = "shop_orders_total"
ORDERS_QUERY = (
    f'sum(increase({ORDERS}{{model="{{model}}",variant="{{variant}}",version="{{version}}"}}'
    "[{window}]))"
)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def window(end_minute: float, minutes: float) -> Window:
    return Window(end=at(end_minute), length=timedelta(minutes=minutes))


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _canary(minute: int) -> tuple[float, float]:
    """(ok, error) requests of churn 1.1.0 in this minute."""
    if 90 <= minute < 120:
        return 0.0, 0.0
    return (57.0, 3.0) if minute < 90 else (54.0, 6.0)


def _histogram(
    labels: dict[str, str], bounds: tuple[str, ...], counts: list[float], ts: str
) -> Iterator[str]:
    running = 0.0
    for le, count in zip(bounds, counts, strict=True):
        running += count
        yield f"{names.SCORE}_bucket{_labels(**labels, le=le)} {running} {ts}"
    yield f"{names.SCORE}_count{_labels(**labels)} {running} {ts}"
    yield f"{names.SCORE}_sum{_labels(**labels)} {running * 0.3} {ts}"


def openmetrics() -> str:
    prod = {"model": "churn", "variant": "production", "version": "1.0.0"}
    canary = {"model": "churn", "variant": "canary", "version": "1.1.0"}
    quiet = {"model": "churn", "variant": "canary", "version": "1.2.0"}
    legacy = {"model": "legacy", "variant": "production", "version": "0.9.0"}
    ok, err, active = [0.0], [0.0], [0.0]  # cumulative canary counts at each minute
    for minute in range(MINUTES):
        good, bad = _canary(minute)
        ok.append(ok[-1] + good)
        err.append(err[-1] + bad)
        active.append(active[-1] + (1.0 if good + bad else 0.0))
    bounds = (*(str(b) for b in SCORE_BUCKETS), "+Inf")
    requests, scores, orders = (
        [f"# TYPE {names.REQUESTS} counter"],
        [],
        [f"# TYPE {ORDERS[:-6]} counter"],
    )
    scores.append(f"# TYPE {names.SCORE} histogram")
    for m in range(MINUTES + 1):
        ts = f"{START.timestamp() + 60 * m:.0f}"
        r = f"{names.REQUESTS}_total"
        requests += [
            f"{r}{_labels(**prod, outcome='ok')} {594.0 * m} {ts}",
            f"{r}{_labels(**prod, outcome='error')} {6.0 * m} {ts}",
            f"{r}{_labels(**canary, outcome='ok')} {ok[m]} {ts}",
            f"{r}{_labels(**canary, outcome='error')} {err[m]} {ts}",
            f"{r}{_labels(**quiet, outcome='ok')} {30.0 * m} {ts}",
        ]
        scores += _histogram(prod, bounds, [c * m for c in (*PRODUCTION_SCORES, 0)], ts)
        scores += _histogram(canary, bounds, [c * active[m] for c in (*CANARY_SCORES, 1)], ts)
        scores += _histogram(legacy, ("0.5", "1.0", "+Inf"), [5.0 * m, 5.0 * m, 0.0], ts)
        orders += [
            f"{ORDERS}{_labels(**prod)} {120.0 * m} {ts}",
            f"{ORDERS}{_labels(**canary)} {10.0 * active[m]} {ts}",
        ]
    return "\n".join([*requests, *scores, *orders, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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
        root, "global:\n  scrape_interval: 1m\nscrape_configs: []\n", retention="100y"
    ) as url:
        yield url


@pytest.fixture
def source(prometheus: str) -> Iterator[PrometheusSource]:
    source = PrometheusSource(prometheus)
    yield source
    source.close()


# -- error count ----------------------------------------------------------------------------


def test_error_count_is_read_at_the_clock_time_given(source: PrometheusSource) -> None:
    assert source.error_count(PRODUCTION, window(90, 60)) == pytest.approx(360)
    assert source.error_count(CANARY, window(90, 60)) == pytest.approx(180)
    assert source.error_count(CANARY, window(240, 60)) == pytest.approx(360)
    assert source.error_count(CANARY, window(240, 5)) == pytest.approx(30)


def test_requests_without_a_single_error_count_zero_errors(source: PrometheusSource) -> None:
    # churn 1.2.0 never failed, so its error counter has no series at all.
    assert source.error_count(QUIET, window(90, 60)) == 0.0


@pytest.mark.parametrize(
    ("series", "asked"),
    [
        (CANARY, window(120, 30)),  # idle: the series exists, no request came
        (Series("churn", "canary", "9.9.9"), window(90, 60)),
        (PRODUCTION, Window(end=START - timedelta(hours=1), length=timedelta(hours=1))),
    ],
    ids=["an idle window", "a version with no series", "a window before the data"],
)
def test_errors_of_no_request_are_no_data_never_zero(
    source: PrometheusSource, series: Series, asked: Window
) -> None:
    with pytest.raises(NoData):
        source.error_count(series, asked)


# -- score histogram ------------------------------------------------------------------------


def test_the_score_histogram_is_de_cumulated_per_gateway_bucket(source: PrometheusSource) -> None:
    counts = source.score_histogram(PRODUCTION, window(90, 60))
    assert len(counts) == len(SCORE_BUCKETS) == 20
    assert counts == pytest.approx([60 * c for c in PRODUCTION_SCORES])


def test_scores_above_the_last_bound_are_counted_in_the_last_bucket(
    source: PrometheusSource,
) -> None:
    counts = source.score_histogram(CANARY, window(90, 60))
    assert counts[:-1] == pytest.approx([60 * c for c in CANARY_SCORES[:-1]])
    assert counts[-1] == pytest.approx(60 * (CANARY_SCORES[-1] + 1))
    assert sum(counts) == pytest.approx(source.request_count(CANARY, window(90, 60)))


@pytest.mark.parametrize(
    ("series", "asked"),
    [(CANARY, window(120, 30)), (QUIET, window(90, 60))],
    ids=["an idle window", "a version that reports no scores"],
)
def test_no_scores_is_no_data(source: PrometheusSource, series: Series, asked: Window) -> None:
    with pytest.raises(NoData):
        source.score_histogram(series, asked)


def test_a_histogram_with_other_buckets_than_the_gateways_is_refused(
    source: PrometheusSource,
) -> None:
    with pytest.raises(MetricsUnavailable, match="not the gateway's"):
        source.score_histogram(LEGACY, window(90, 60))


# -- business metrics -----------------------------------------------------------------------


def test_a_business_metric_is_asked_for_each_variant_over_the_window(
    source: PrometheusSource,
) -> None:
    assert source.business_value(ORDERS_QUERY, PRODUCTION, window(240, 5)) == pytest.approx(600)
    assert source.business_value(ORDERS_QUERY, CANARY, window(240, 5)) == pytest.approx(50)
    assert source.business_value(ORDERS_QUERY, CANARY, window(90, 60)) == pytest.approx(600)


def test_the_template_is_filled_with_escaped_label_values_and_the_window() -> None:
    assert queries.business(ORDERS_QUERY, CANARY, window(240, 5)) == (
        f'sum(increase({ORDERS}{{model="churn",variant="canary",version="1.1.0"}}[300s]))'
    )


@pytest.mark.parametrize(
    ("template", "error"),
    [
        (f'sum({ORDERS}{{model="{{model}}"}}) / 0', NoData),  # +Inf
        (f'sum({ORDERS}{{model="{{model}}"}}) * 0 / 0', NoData),  # NaN
        (f'sum({ORDERS}{{model="{{model}}",variant="nothing"}})', NoData),  # no sample
        (f'{ORDERS}{{model="{{model}}"}}', MetricsUnavailable),  # two samples
        ("sum(", MetricsUnavailable),  # refused by Prometheus
        (f'sum({ORDERS}{{model="{{user}}"}})', MetricsUnavailable),  # an unknown placeholder
        (f"sum({ORDERS}{{model={{model}}}})", MetricsUnavailable),  # an unquoted label value
    ],
    ids=[
        "an infinite answer",
        "a NaN answer",
        "no sample",
        "more than one sample",
        "a query Prometheus refuses",
        "a placeholder other than model, variant, version, window",
        "a label placeholder outside quotes",
    ],
)
def test_a_business_metric_answers_one_finite_sample_or_fails_closed(
    source: PrometheusSource, template: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        source.business_value(template, CANARY, window(240, 5))


def test_a_business_answer_larger_than_allowed_is_unavailable(prometheus: str) -> None:
    small = PrometheusSource(prometheus, max_response_bytes=64)
    with pytest.raises(MetricsUnavailable, match="larger than allowed"):
        small.business_value(ORDERS_QUERY, PRODUCTION, window(240, 5))
    small.close()
