"""The nginx router in front of a real nginx: the canary split, the shadow mirror, reloads that
drop nothing, a rejected configuration that leaves the old one serving, and idempotent applies."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.base.local_server import free_port
from bot.base.waiting import wait_until
from bot.rollout.routers.nginx import NginxRouter
from bot.rollout.routers.router import RouterError, Slot, configured_mirror_share
from gateway.routing import CanarySlot, Deployed, ModelRoute, ShadowSlot
from tests.traffic_world import RunningNginx, Upstream, infer, require, upstreams

PROD, CANARY, SHADOW = "1.0.0", "1.1.0", "1.2.0"
N = 2000


def sha(c: str) -> str:
    return c * 64


def route(*, weight: float | None = None, share: float | None = None) -> ModelRoute:
    return ModelRoute(
        production=Deployed(version=PROD, sha256=sha("a")),
        canary=None
        if weight is None
        else CanarySlot(version=CANARY, sha256=sha("b"), weight=weight),
        shadow=None
        if share is None
        else ShadowSlot(version=SHADOW, sha256=sha("c"), mirror_share=share),
    )


@pytest.fixture
def gateways() -> Iterator[dict[str, Upstream]]:
    yield from upstreams(PROD, CANARY, SHADOW)


@pytest.fixture
def nginx(
    request: pytest.FixtureRequest, tmp_path: Path, gateways: dict[str, Upstream]
) -> Iterator[tuple[NginxRouter, str]]:
    """A router and the nginx it drives, started from the router's first configuration.

    The mirror's timeouts are the router's short defaults unless a test marks them patient:
    on a loaded test machine a 200 ms connect timeout to a Python stand-in can drop mirrors,
    which is the point of measuring coverage but not what the coverage tests check."""
    patient = request.node.get_closest_marker("patient_mirror") is not None
    addresses = {v: g.address for v, g in gateways.items()}
    addresses["9.9.9"] = "shipyard-no-such-upstream.invalid:8080"
    router = NginxRouter(
        nginx=require("nginx"),
        directory=tmp_path / "nginx",
        listen_port=free_port(),
        upstreams={"churn": addresses, "fraud": addresses},
        **({"mirror_connect_timeout": "5s", "mirror_timeout": "5s"} if patient else {}),
    )
    running = RunningNginx(router.directory, router.install())
    url = f"http://127.0.0.1:{router.port}"
    try:
        # nginx starts with no route at all, and after a reload its first worker leaves on its
        # own schedule: on a loaded machine it went on accepting (and answering 404 from the
        # empty configuration) for 13 of 20 fresh connections after the reload was confirmed.
        # So every test starts from production serving alone; the change under test is then
        # from one route to another, where a late old worker still answers from production.
        router.apply("churn", route())
        wait_until(lambda: _all_answered(url), timeout_s=20, what="production to serve alone")
        yield router, url
    finally:
        running.stop()


def test_the_canary_answers_its_weight_of_requests_and_production_the_rest(
    nginx: tuple[NginxRouter, str],
) -> None:
    router, url = nginx
    router.apply("churn", route(weight=0.2))
    answers = infer(url, n=N)
    assert {status for status, _ in answers} == {200}
    counts = Counter(version for _, version in answers)
    assert set(counts) == {PROD, CANARY}
    assert abs(counts[CANARY] / N - 0.2) < 0.04  # 4.5 standard deviations at n = 2,000


@pytest.mark.patient_mirror
def test_mirrored_requests_reach_the_shadow_and_answers_always_come_from_production(
    nginx: tuple[NginxRouter, str], gateways: dict[str, Upstream]
) -> None:
    router, url = nginx
    router.apply("churn", route(share=1.0))
    answers = infer(url, n=N)
    assert Counter(answers) == {(200, PROD): N}
    shadow, production = gateways[SHADOW], gateways[PROD]
    wait_until(lambda: shadow.count() >= N, timeout_s=20, what="the mirror to deliver")
    # Each mirror carries the production request's id and body: shadow pairs them by id.
    by_id = {r.request_id: r for r in production.received}
    assert {r.variant for r in shadow.received} == {"shadow"}
    assert all(by_id[r.request_id].body == r.body for r in shadow.received)
    assert configured_mirror_share(router, "churn") == 1.0


@pytest.mark.patient_mirror
def test_a_mirror_share_below_one_samples_that_share_and_the_router_reports_it(
    nginx: tuple[NginxRouter, str], gateways: dict[str, Upstream]
) -> None:
    router, url = nginx
    router.apply("churn", route(share=0.333333))
    assert configured_mirror_share(router, "churn") == 0.3333  # nginx splits in 0.01% steps
    infer(url, n=N)
    assert abs(gateways[SHADOW].settled_count() / N - 0.3333) < 0.04


def test_a_slow_shadow_does_not_slow_the_answer(
    nginx: tuple[NginxRouter, str], gateways: dict[str, Upstream]
) -> None:
    router, url = nginx
    gateways[SHADOW].delay_s = 3.0  # longer than the mirror's 1 s read timeout
    router.apply("churn", route(share=1.0))
    started = time.monotonic()
    answers = infer(url, n=20)  # a fresh connection each
    elapsed = time.monotonic() - started
    assert Counter(answers) == {(200, PROD): 20}
    assert elapsed < 2.0, f"20 answers took {elapsed:.2f} s behind a 3 s shadow"


def test_on_a_keep_alive_connection_the_next_request_waits_at_most_the_mirror_timeout(
    nginx: tuple[NginxRouter, str], gateways: dict[str, Upstream]
) -> None:
    """nginx reads a connection's next request only once the previous one's mirror is done;
    the mirror's own short timeout (1 s) is what bounds that wait, not the shadow (3 s)."""
    router, url = nginx
    gateways[SHADOW].delay_s = 3.0
    router.apply("churn", route(share=1.0))
    with httpx.Client(timeout=10) as client:
        started = time.monotonic()
        versions = [client.post(f"{url}/v2/models/churn/infer", json={}).json() for _ in range(3)]
        elapsed = time.monotonic() - started
    assert versions == [{"version": PROD}] * 3
    assert 1.5 < elapsed < 4.5, f"3 keep-alive requests took {elapsed:.2f} s (unbounded: 6 s+)"


def test_a_route_change_takes_effect_after_the_reload_without_dropping_requests(
    nginx: tuple[NginxRouter, str],
) -> None:
    import threading

    router, url = nginx
    during: list[tuple[int, str]] = []
    stop = threading.Event()

    def keep_sending() -> None:
        while not stop.is_set():
            during.extend(infer(url, n=8, workers=2))

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        wait_until(lambda: len(during) >= 40, timeout_s=20, what="traffic before the change")
        router.apply("churn", route(weight=1.0))
        after_change = len(during)
        wait_until(lambda: len(during) >= after_change + 40, timeout_s=20, what="traffic after")
    finally:
        stop.set()
        sender.join(20)
    assert {status for status, _ in during} == {200}, "a request failed across the reload"
    # The old worker may answer one last request from production before it leaves (as above).
    wait_until(
        lambda: Counter(v for _, v in infer(url, n=50)) == {CANARY: 50},
        timeout_s=20,
        what="only the canary to answer",
    )


def _all_answered(url: str) -> bool:
    return {status for status, _ in infer(url, n=16, workers=2)} == {200}


def test_a_route_nginx_rejects_leaves_the_old_configuration_serving(
    nginx: tuple[NginxRouter, str],
) -> None:
    router, url = nginx
    router.apply("churn", route(weight=0.5))
    before = router.config.read_text()
    bad = ModelRoute(
        production=Deployed(version=PROD, sha256=sha("a")),
        canary=CanarySlot(version="9.9.9", sha256=sha("d"), weight=0.5),
    )
    with pytest.raises(RouterError) as caught:
        router.apply("churn", bad)
    assert caught.value.message == "nginx rejected the new configuration"
    assert 'host not found in upstream "shipyard-no-such-upstream.invalid:8080"' in str(
        caught.value
    )
    assert router.config.read_text() == before
    assert router.current("churn") == route(weight=0.5)
    assert set(v for _, v in infer(url, n=100)) == {PROD, CANARY}


def test_a_version_without_an_upstream_is_a_clear_error_and_changes_nothing(
    nginx: tuple[NginxRouter, str],
) -> None:
    router, _ = nginx
    router.apply("churn", route())
    unknown = ModelRoute(
        production=Deployed(version=PROD, sha256=sha("a")),
        shadow=ShadowSlot(version="7.0.0", sha256=sha("e")),
    )
    with pytest.raises(RouterError, match=r"no upstream is configured for churn version 7\.0\.0"):
        router.apply("churn", unknown)
    assert router.current("churn") == route()


def test_applying_the_same_route_twice_changes_nothing(nginx: tuple[NginxRouter, str]) -> None:
    router, _ = nginx
    router.apply("churn", route(weight=0.05, share=0.5))
    config = router.config.read_text()
    modified = router.config.stat().st_mtime_ns
    router.apply("churn", route(weight=0.05, share=0.5))
    assert router.config.read_text() == config
    assert router.config.stat().st_mtime_ns == modified


def test_removing_the_canary_slot_sends_every_answer_to_production(
    nginx: tuple[NginxRouter, str],
) -> None:
    router, url = nginx
    router.apply("churn", route(weight=0.5, share=1.0))
    router.remove_slot("churn", Slot.CANARY)
    assert router.current("churn") == route(share=1.0)
    assert Counter(v for _, v in infer(url, n=50)) == {PROD: 50}
    router.remove_slot("churn", Slot.CANARY)  # nothing left to remove: a no-op
    assert router.current("churn") == route(share=1.0)


def test_a_reload_without_a_running_nginx_is_a_clear_error(tmp_path: Path) -> None:
    router = NginxRouter(
        nginx=require("nginx"),
        directory=tmp_path / "idle",
        listen_port=free_port(),
        upstreams={"churn": {PROD: "127.0.0.1:9"}},
        reload_timeout_s=1,
    )
    router.install()
    before = router.config.read_text()
    with pytest.raises(RouterError, match="nginx could not be reloaded"):
        router.apply("churn", route())
    assert router.current("churn") is None
    assert router.config.read_text() == before
    assert router.current("churn") is None


@pytest.mark.parametrize(
    "options",
    [
        {"listen_host": "127.0.0.1; include /etc/passwd"},
        {"mirror_timeout": "1s; proxy_pass http://elsewhere"},
        {"user": "root; daemon off"},
    ],
    ids=["a listen host", "a mirror timeout", "a user"],
)
def test_settings_that_would_change_the_configuration_s_meaning_are_refused(
    tmp_path: Path, options: dict[str, str]
) -> None:
    with pytest.raises(ValueError):
        NginxRouter(directory=tmp_path, listen_port=8080, upstreams={}, **options)  # type: ignore[arg-type]


def test_applying_before_nginx_was_ever_set_up_is_a_clear_error(tmp_path: Path) -> None:
    router = NginxRouter(
        nginx=require("nginx"),
        directory=tmp_path / "fresh",
        listen_port=free_port(),
        upstreams={"churn": {PROD: "127.0.0.1:9"}},
        reload_timeout_s=1,
    )
    with pytest.raises(RouterError, match="nginx could not be reloaded"):
        router.apply("churn", route())
    assert router.current("churn") is None


def test_two_appliers_at_once_both_take_effect(nginx: tuple[NginxRouter, str]) -> None:
    import threading

    router, url = nginx
    errors: list[Exception] = []

    def apply(model: str, wanted: ModelRoute) -> None:
        try:
            router.apply(model, wanted)
        except Exception as exc:
            errors.append(exc)

    appliers = [
        threading.Thread(target=apply, args=("churn", route(weight=1.0))),
        threading.Thread(target=apply, args=("fraud", route(share=1.0))),
    ]
    for applier in appliers:
        applier.start()
    for applier in appliers:
        applier.join(30)
    assert errors == []
    assert (router.current("churn"), router.current("fraud")) == (
        route(weight=1.0),
        route(share=1.0),
    )
    assert Counter(v for _, v in infer(url, n=20)) == {CANARY: 20}
    assert Counter(v for _, v in infer(url, model="fraud", n=20)) == {PROD: 20}
