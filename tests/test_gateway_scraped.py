"""A real gateway scraped by a real Prometheus every second, read back through the bot's
MetricsSource (PromQL over Prometheus' HTTP API): the numbers the bot sees are the requests that
were sent, by variant and version, with no mirrored request unaccounted for.

Two models are routed. `churn`: production 1.0.0, canary 1.2.0 (skops) for part of the request
ids, shadow 1.1.0 with every request mirrored. `upsell`: production 1.0.0 and a shadow whose
configuration names a feature production's requests do not carry, so every mirror to it fails.
`retention`: production 1.0.0, served but never asked.
"""

from __future__ import annotations

import math
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.base.waiting import wait_until
from bot.rollout.metrics.factory import PrometheusConfig, make_metrics_source
from bot.rollout.metrics.prometheus import PrometheusSource
from bot.rollout.metrics.source import (
    QUANTILES,
    MetricsSource,
    MirrorCounts,
    NoData,
    Series,
    Window,
)
from gateway import names
from gateway.config import GatewayConfig
from gateway.routing import CanarySlot, Deployed, ModelRoute, Routing, ShadowSlot, save_routing
from gateway.store import ArtifactStore
from tests.gateway_harness import benchmark_rows, fixture_dir, publish_fixtures, running_gateway
from tests.prometheus_server import running_prometheus

PRODUCTION = Series("churn", names.VARIANT_PRODUCTION, "1.0.0")
CANARY = Series("churn", names.VARIANT_CANARY, "1.2.0")
SHADOW = Series("churn", names.VARIANT_SHADOW, "1.1.0")
UPSELL = Series("upsell", names.VARIANT_PRODUCTION, "1.0.0")
UPSELL_SHADOW = Series("upsell", names.VARIANT_SHADOW, "2.0.0")
IDLE = Series("retention", names.VARIANT_PRODUCTION, "1.0.0")
CANARY_WEIGHT = 0.3
GOOD, BAD_BODIES, UPSELL_REQUESTS = 40, 5, 10


@dataclass(frozen=True)
class Scraped:
    source: MetricsSource
    window: Window  # ends at Prometheus' last scrape of the gateway, after all the traffic
    answered: Counter[tuple[str, str]]  # (variant, version) -> requests answered with 200


def _routing(root: Path) -> Routing:
    shas = publish_fixtures(root / "store")
    # The upsell shadow expects `discount_rate`; production's requests carry `discount_pct`.
    renamed = root / "renamed"
    shutil.copytree(fixture_dir("candidate_better"), renamed)
    config = renamed / "config.yaml"
    config.write_text(config.read_text().replace("- discount_pct", "- discount_rate"))
    artifacts = ArtifactStore(str(root / "store"))
    upsell_prod = artifacts.publish(fixture_dir("production"), model="upsell", version="1.0.0")
    upsell_shadow = artifacts.publish(renamed, model="upsell", version="2.0.0")
    idle = artifacts.publish(fixture_dir("production"), model="retention", version="1.0.0")
    return Routing(
        revision=1,
        models={
            "churn": ModelRoute(
                production=Deployed(version="1.0.0", sha256=shas["1.0.0"]),
                canary=CanarySlot(version="1.2.0", sha256=shas["1.2.0"], weight=CANARY_WEIGHT),
                shadow=ShadowSlot(version="1.1.0", sha256=shas["1.1.0"], mirror_share=1.0),
            ),
            "upsell": ModelRoute(
                production=Deployed(version="1.0.0", sha256=upsell_prod),
                shadow=ShadowSlot(version="2.0.0", sha256=upsell_shadow, mirror_share=1.0),
            ),
            "retention": ModelRoute(production=Deployed(version="1.0.0", sha256=idle)),
        },
    )


def _scrape_config(gateway_url: str) -> str:
    target = gateway_url.removeprefix("http://")
    return (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
        "scrape_configs:\n  - job_name: gateway\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _counted(source: MetricsSource, series: Series) -> float | None:
    try:
        return source.request_count(series, Window(end=_now(), length=timedelta(minutes=5)))
    except NoData:
        return None


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    root = tmp_path_factory.mktemp("scraped")
    save_routing(root / "routing.json", _routing(root))
    config = GatewayConfig(
        store_url=str(root / "store"),
        routing_path=root / "routing.json",
        reload_every_s=0.1,
        log_share=0.0,
    )
    (root / "prometheus").mkdir()
    with (
        running_gateway(config) as gw,
        running_prometheus(root / "prometheus", _scrape_config(gw.url)) as prometheus,
    ):
        source = make_metrics_source(PrometheusConfig(url=prometheus))  # type: ignore[arg-type]
        assert isinstance(source, PrometheusSource)  # the port, and raw PromQL for the waits
        wait_until(
            lambda: gw.client.get("/v2/health/ready").status_code == 200,
            timeout_s=30,
            what="the gateway to load every routed version",
        )
        # Two scrapes of every served series at zero before any traffic: counted from zero.
        for series in (PRODUCTION, CANARY, SHADOW, UPSELL, UPSELL_SHADOW, IDLE):
            wait_until(
                lambda s=series: _counted(source, s) == 0.0,  # type: ignore[misc]
                timeout_s=20,
                what=f"Prometheus to scrape {series} at zero",
                every_s=0.1,
            )

        answered: Counter[tuple[str, str]] = Counter()
        _, x = benchmark_rows(GOOD)
        for i in range(GOOD):
            response = gw.infer(x[i : i + 1], request_id=f"scraped-{i}")
            assert response.status_code == 200
            variant = response.headers["x-shipyard-variant"]
            answered[(variant, response.headers["x-shipyard-version"])] += 1
        for _ in range(BAD_BODIES):  # refused before any model runs: not a model's error
            bad = gw.client.post("/v2/models/churn/infer", content=b'{"inputs": [')
            assert bad.status_code == 400
        for i in range(UPSELL_REQUESTS):
            response = gw.infer(x[i : i + 1], request_id=f"upsell-{i}", model="upsell")
            assert response.status_code == 200
        churn_total = sum(answered.values())
        expected_total = 2 * churn_total + 2 * UPSELL_REQUESTS  # answers + their mirrors
        everything = f"sum({names.REQUESTS}_total)"

        def scraped_all() -> float | None:
            # The last scrape holds every answer and every mirror (they run off the request path).
            try:
                if source.value(everything, at=_now()) != expected_total:
                    return None
                return source.value(f"max(timestamp({names.REQUESTS}_total))", at=_now())
            except NoData:
                return None

        last_scrape = wait_until(
            scraped_all, timeout_s=20, what="Prometheus to scrape the traffic", every_s=0.1
        )
        # increase() extrapolates to a window's end that falls between scrapes; ending the window
        # at the last scrape (real time, Prometheus' own) makes the counts exact.
        window = Window(end=datetime.fromtimestamp(last_scrape, UTC), length=timedelta(minutes=5))
        try:
            yield Scraped(source, window, answered)
        finally:
            source.close()


def test_every_request_sent_is_counted_once_for_the_version_that_answered(
    scraped: Scraped,
) -> None:
    sent = scraped.answered
    assert sent[("production", "1.0.0")] > 0 and sent[("canary", "1.2.0")] > 0
    assert set(sent) == {("production", "1.0.0"), ("canary", "1.2.0")}
    assert scraped.source.request_count(PRODUCTION, scraped.window) == sent[("production", "1.0.0")]
    assert scraped.source.request_count(CANARY, scraped.window) == sent[("canary", "1.2.0")]
    # Every answered request (production or canary) is mirrored to the shadow.
    assert scraped.source.request_count(SHADOW, scraped.window) == GOOD
    assert scraped.source.request_count(UPSELL, scraped.window) == UPSELL_REQUESTS


def test_bodies_refused_as_invalid_are_not_model_errors(scraped: Scraped) -> None:
    for series in (PRODUCTION, CANARY, SHADOW, UPSELL):
        assert scraped.source.error_rate(series, scraped.window) == 0.0


def test_a_shadow_that_cannot_read_the_requests_fails_every_mirror(scraped: Scraped) -> None:
    assert scraped.source.request_count(UPSELL_SHADOW, scraped.window) == UPSELL_REQUESTS
    assert scraped.source.error_rate(UPSELL_SHADOW, scraped.window) == 1.0
    with pytest.raises(NoData):  # it never ran the model: no latency, rather than zero
        scraped.source.latency_quantile(UPSELL_SHADOW, scraped.window, 0.5)


@pytest.mark.parametrize("series", [PRODUCTION, CANARY, SHADOW], ids=lambda s: s.variant)
def test_latency_and_scores_are_positive_and_finite(scraped: Scraped, series: Series) -> None:
    latencies = [scraped.source.latency_quantile(series, scraped.window, q) for q in QUANTILES]
    assert all(0 < value < 2.5 and math.isfinite(value) for value in latencies)
    assert latencies == sorted(latencies)
    mean = scraped.source.score_mean(series, scraped.window)
    assert 0 < mean < 1


def test_mirror_counts_equal_the_answered_requests_with_none_dropped(scraped: Scraped) -> None:
    assert scraped.source.mirror_counts("churn", "1.1.0", scraped.window) == MirrorCounts(
        mirrored=GOOD, dropped=0.0
    )
    assert scraped.source.mirror_counts("upsell", "2.0.0", scraped.window) == MirrorCounts(
        mirrored=UPSELL_REQUESTS, dropped=0.0
    )


@pytest.mark.parametrize(
    "series",
    [
        Series("churn", names.VARIANT_CANARY, "1.1.0"),  # routed, but as the shadow
        Series("churn", names.VARIANT_PRODUCTION, "9.9.9"),
        Series("fraud", names.VARIANT_PRODUCTION, "1.0.0"),
    ],
    ids=["a version routed in another slot", "a version never routed", "a model never routed"],
)
def test_a_version_without_traffic_is_no_data_never_zero(scraped: Scraped, series: Series) -> None:
    with pytest.raises(NoData):
        scraped.source.request_count(series, scraped.window)
    with pytest.raises(NoData):
        scraped.source.error_rate(series, scraped.window)


def test_a_version_served_but_never_asked_counts_zero_and_has_no_rate_or_latency(
    scraped: Scraped,
) -> None:
    assert scraped.source.request_count(IDLE, scraped.window) == 0.0  # served: a true zero
    with pytest.raises(NoData):
        scraped.source.error_rate(IDLE, scraped.window)  # 0 / 0: no data, not 0% errors
    with pytest.raises(NoData):
        scraped.source.latency_quantile(IDLE, scraped.window, 0.99)


def test_a_window_ending_now_reads_the_same_traffic(scraped: Scraped) -> None:
    # At the real current time the window's end lies between scrapes: increase() extrapolates
    # the last scrape's count by at most 1.1 scrape intervals over a sampled span of at least
    # two (the zero scrapes, then the traffic's), and never below what was sent (it starts at 0).
    now = Window(end=_now(), length=timedelta(minutes=5))
    count = scraped.source.request_count(SHADOW, now)
    assert GOOD <= count <= GOOD * (1 + 1.1 / 2)


def test_a_routed_version_is_exposed_at_zero_before_its_first_request(tmp_path: Path) -> None:
    # Without it, Prometheus first sees a canary's counter at N and increase() misses those N.
    save_routing(tmp_path / "routing.json", _routing(tmp_path))
    config = GatewayConfig(
        store_url=str(tmp_path / "store"), routing_path=tmp_path / "routing.json"
    )
    with running_gateway(config) as gw:
        wait_until(
            lambda: gw.client.get("/v2/health/ready").status_code == 200,
            timeout_s=30,
            what="the gateway to load every routed version",
        )
        text = gw.client.get("/metrics").text
    canary = {"model": "churn", "variant": "canary", "version": "1.2.0"}
    assert _sample(text, f"{names.REQUESTS}_total", **canary, outcome="error") == 0
    assert _sample(text, f"{names.MIRRORED}_total", model="churn", version="1.1.0") == 0
    idle = {"model": "retention", "variant": "production", "version": "1.0.0"}
    assert _sample(text, f"{names.LATENCY_SECONDS}_bucket", **idle, le="+Inf") == 0


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample with exactly these labels in Prometheus text, if exposed."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        if dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")) == labels:
            return float(match.group(3))
    return None
