"""nginx in front of real Shipyard gateways, as an operator configures it: the router is built
from a YAML file (`SHIPYARD_SHADOW_NGINX` / `SHIPYARD_CANARY_NGINX`), keeps the gateways' routing
table equal to nginx's, and the gateways (`--behind-router`) answer from the slot nginx names.
What is asserted is what a client and the shadow analysis see: the answering versions and their
shares, and a shadow row in the prediction log for every answer, under the same request id."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from bot.base.waiting import wait_until
from bot.rollout.metrics.prediction_log import read_prediction_log
from bot.rollout.routers.factory import stage_router
from bot.rollout.routers.nginx import NginxRouter
from bot.rollout.routers.router import RouterError, Slot
from gateway import names
from gateway.config import GatewayConfig
from gateway.routing import CanarySlot, Deployed, ModelRoute, ShadowSlot, load_routing
from gateway.store import ArtifactStore
from tests.gateway_harness import (
    FixedClock,
    RunningGateway,
    benchmark_rows,
    evaluator_scores,
    publish_fixtures,
    running_gateway,
)
from tests.traffic_world import nginx_router_file, nginx_started

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@dataclass
class Front:
    router: NginxRouter
    url: str
    gateway: RunningGateway
    store: Path
    table: Path
    shas: dict[str, str]

    def infer(self, client: httpx.Client, x: np.ndarray) -> httpx.Response:
        tensor = {"name": "features", "shape": list(x.shape), "datatype": "FP32"}
        body = {"inputs": [{**tensor, "data": x.reshape(-1).tolist()}]}
        return client.post(f"{self.url}/v2/models/churn/infer", json=body)

    def loaded(self, variant: str) -> bool:
        """The gateway has loaded the table's version for `variant` (its series are announced)."""
        return f'variant="{variant}"' in self.gateway.client.get("/metrics").text

    def logged(self, variant: str) -> pd.DataFrame:
        return read_prediction_log(ArtifactStore(str(self.store)), "churn", variant, since=AT)


TOKEN = "router-token-0123456789abcdef"


def nginx_file(folder: Path, upstreams: str) -> Path:
    return nginx_router_file(folder, upstreams=upstreams, token=TOKEN)


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    store, table = tmp_path / "artifacts", tmp_path / "routing.json"
    shas = publish_fixtures(store)
    config = GatewayConfig(
        store_url=str(store),
        routing_path=table,
        clock=FixedClock(AT),
        behind_router=True,
        router_token=TOKEN,
        reload_every_s=0.1,
        log_flush_s=0.2,
    )
    with running_gateway(config) as gateway:
        pool = gateway.url.removeprefix("http://")
        settings = nginx_file(tmp_path, f"{{'*': {{'*': '{pool}'}}}}")
        with nginx_started(table, settings) as router:
            yield Front(router, f"http://127.0.0.1:{router.port}", gateway, store, table, shas)


def route(shas: dict[str, str], *, weight: float = 0.0, share: float = 0.0) -> ModelRoute:
    canary = CanarySlot(version="1.1.0", sha256=shas["1.1.0"], weight=weight)
    shadow = ShadowSlot(version="1.2.0", sha256=shas["1.2.0"], mirror_share=share)
    return ModelRoute(
        production=Deployed(version="1.0.0", sha256=shas["1.0.0"]),
        canary=canary if weight else None,
        shadow=shadow if share else None,
    )


def test_nginx_splits_and_mirrors_and_the_gateways_behind_it_answer_and_log_each_slot(
    front: Front,
) -> None:
    wanted = route(front.shas, weight=0.3, share=1.0)
    front.router.apply("churn", wanted)
    # The gateways' table says what nginx says: they load all three versions from it.
    assert load_routing(front.table).models["churn"] == wanted
    assert front.router.current("churn") == wanted
    wait_until(
        lambda: front.loaded("canary") and front.loaded("shadow"),
        timeout_s=60,
        what="the gateway to load the canary and the shadow",
    )

    n = 300
    _, x = benchmark_rows(n)
    answered: dict[str, tuple[str, int]] = {}  # request id -> (variant, row)
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            answer = front.infer(client, x[i : i + 1])
            assert answer.status_code == 200, answer.text
            variant = answer.headers["x-shipyard-variant"]
            expected = {"production": "1.0.0", "canary": "1.1.0"}[variant]
            assert answer.json()["model_version"] == expected
            answered[answer.headers["x-request-id"]] = (variant, i)
    shares = Counter(variant for variant, _ in answered.values())
    assert len(answered) == n  # nginx gave every request its own id
    assert 55 <= shares["canary"] <= 125, shares  # 30% of 300, within ~4 sd

    # Every answer was mirrored to the shadow, which scored the same rows, under the same id.
    wait_until(
        lambda: len(front.logged(names.VARIANT_SHADOW)) == n,
        timeout_s=60,
        what="every mirrored request to be logged",
    )
    shadow = front.logged(names.VARIANT_SHADOW)
    assert set(shadow[names.LOG_REQUEST_ID]) == set(answered)
    assert set(shadow[names.LOG_VERSION]) == {"1.2.0"}
    rows = [answered[rid][1] for rid in shadow[names.LOG_REQUEST_ID]]
    expected_scores = evaluator_scores("candidate_skops", x[rows])
    np.testing.assert_allclose(shadow[names.LOG_SCORE].to_numpy(float), expected_scores, atol=1e-6)
    wait_until(
        lambda: len(front.logged(names.VARIANT_PRODUCTION)) + len(front.logged("canary")) == n,
        timeout_s=60,
        what="the answers to be logged",
    )
    canary = front.logged(names.VARIANT_CANARY)
    assert set(canary[names.LOG_REQUEST_ID]) == {
        r for r, (v, _) in answered.items() if v == "canary"
    }
    assert front.gateway.metric("shipyard_gateway_mirrored_total", version="1.2.0") == n


def test_a_client_that_reaches_a_gateway_directly_cannot_pose_as_nginx(front: Front) -> None:
    front.router.apply("churn", route(front.shas, weight=0.5, share=1.0))
    wait_until(
        lambda: front.loaded("canary") and front.loaded("shadow"),
        timeout_s=60,
        what="the gateway to load the canary and the shadow",
    )
    _, x = benchmark_rows(1)
    tensor = {"name": "features", "shape": [1, x.shape[1]], "datatype": "FP32"}
    body = {"inputs": [{**tensor, "data": x.reshape(-1).tolist()}]}
    for token in (None, "not-the-router-token-000"):
        for variant in ("shadow", "canary"):
            headers = {"x-shipyard-variant": variant, "x-request-id": f"forged-{variant}"}
            if token is not None:
                headers["x-shipyard-router-token"] = token
            answer = front.gateway.client.post("/v2/models/churn/infer", json=body, headers=headers)
            assert answer.status_code == 200
            assert answer.headers["x-shipyard-variant"] == "production"
            assert answer.json()["model_version"] == "1.0.0"
    wait_until(
        lambda: len(front.logged(names.VARIANT_PRODUCTION)) == 4,
        timeout_s=30,
        what="the answers to be logged",
    )
    assert front.logged(names.VARIANT_SHADOW).empty  # nothing forged reached the shadow's log
    # nginx's own requests carry the token: through nginx the shadow gets its mirror.
    with httpx.Client(timeout=30) as client:
        assert front.infer(client, x).status_code == 200
    wait_until(
        lambda: len(front.logged(names.VARIANT_SHADOW)) == 1,
        timeout_s=30,
        what="the mirror through nginx to be logged",
    )


def test_taking_a_slot_away_stops_its_traffic_in_nginx_and_in_the_gateways_table(
    front: Front,
) -> None:
    front.router.apply("churn", route(front.shas, weight=0.5, share=1.0))
    wait_until(lambda: front.loaded("shadow"), timeout_s=60, what="the shadow to load")
    front.router.remove_slot("churn", Slot.SHADOW)
    front.router.remove_slot("churn", Slot.CANARY)
    assert load_routing(front.table).models["churn"] == route(front.shas)
    mirrored = front.gateway.metric("shipyard_gateway_mirrored_total")
    _, x = benchmark_rows(40)
    with httpx.Client(timeout=30) as client:
        variants = {
            front.infer(client, x[i : i + 1]).headers["x-shipyard-variant"] for i in range(40)
        }
    assert variants == {"production"}
    assert front.gateway.metric("shipyard_gateway_mirrored_total") == mirrored


def test_a_change_nginx_refuses_leaves_the_gateways_table_as_it_was(tmp_path: Path) -> None:
    table = tmp_path / "routing.json"
    shas = {v: c * 64 for v, c in (("1.0.0", "a"), ("1.1.0", "b"), ("1.2.0", "c"))}
    upstreams = (
        "{churn: {'1.0.0': '127.0.0.1:9', '1.2.0': 'shipyard-no-such-upstream.invalid:8080'}}"
    )
    router = stage_router(table, nginx_file(tmp_path, upstreams))

    # A version nobody gave an upstream: refused before anything is written.
    with pytest.raises(RouterError, match=r"no upstream is configured for churn version 1\.1\.0"):
        router.apply("churn", route(shas, weight=0.1))
    # nginx -t refuses a host it cannot resolve: the gateways never hear of the shadow.
    with pytest.raises(RouterError, match="nginx rejected the new configuration") as rejected:
        router.apply("churn", route(shas, share=0.5))
    assert "host not found" in str(rejected.value)
    assert not table.exists() or load_routing(table).models == {}
    # A valid change that nginx (not running) never takes up is undone in the table too.
    with pytest.raises(RouterError, match="could not be reloaded"):
        router.apply("churn", route(shas))
    assert not table.exists() or load_routing(table).models == {}
    assert router.current("churn") is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("directory: [unclosed\n", "nginx.yaml is not usable"),
        ("- a list\n", "nginx.yaml is not usable: not a mapping"),
        ("directory: /x\nlisten_port: 0\nupstreams: {}\n", "listen_port"),
        ("directory: /x\nlisten_port: 80\nupstreams: {}\nextra: 1\n", "extra"),
        ("directory: /x\nlisten_port: 80\nupstreams: {}\n", "router_token_file is required"),
    ],
)
def test_an_unusable_nginx_file_is_a_clear_router_error(
    tmp_path: Path, text: str, why: str
) -> None:
    (tmp_path / "nginx.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RouterError, match=why):
        stage_router(tmp_path / "routing.json", tmp_path / "nginx.yaml")
    with pytest.raises(RouterError, match=r"missing\.yaml is not usable"):
        stage_router(tmp_path / "routing.json", tmp_path / "missing.yaml")


def test_the_operator_writes_nginx_first_configuration_with_one_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli.main import app

    settings = nginx_file(tmp_path, "{'*': {'*': '127.0.0.1:9'}}")
    table = str(tmp_path / "routing.json")
    result = CliRunner().invoke(app, ["nginx-config", str(settings), "--table", table])
    assert result.exit_code == 0, result.output
    config = tmp_path / "nginx" / "nginx.conf"
    assert f"start nginx with: nginx -p {tmp_path / 'nginx'} -c {config}" in result.output
    assert config.read_text(encoding="utf-8").startswith("# Rendered by Shipyard's nginx router")

    (tmp_path / "bad.yaml").write_text("listen_port: 80\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["nginx-config", str(tmp_path / "bad.yaml"), "--table", table])
    assert result.exit_code == 2
    assert "error: the nginx router file bad.yaml is not usable" in result.output
    assert "Traceback" not in result.output
