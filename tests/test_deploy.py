"""The deployment files parse and say what operators rely on (no Docker engine or cluster here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.base.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy/compose.yml"
CHART = ROOT / "deploy/helm/shipyard"
OPERATIONS = ROOT / "docs/operations.md"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_runs_postgres_two_bot_replicas_and_prometheus(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "migrate", "bot-1", "bot-2", "prometheus"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    for name in ("bot-1", "bot-2"):
        bot = services[name]
        assert bot["image"].startswith("ghcr.io/shipyard-ml/shipyard:")
        assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = bot["environment"]
        assert env["SHIPYARD_DATABASE_URL"].startswith("postgresql://")
        assert "SHIPYARD_PUBLIC_URL" in env and ":?" in env["SHIPYARD_PUBLIC_URL"]  # required
        assert env["SHIPYARD_GITHUB_PRIVATE_KEY_PATH"].startswith("/run/secrets/")
        assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["shipyard", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "healthcheck" in services["prometheus"]
    assert "gateway" in COMPOSE.read_text()  # the planned gateway's placeholder
    # The split layout: intake-only replicas (SHIPYARD_RUN_WORKERS=false) and one `work`.
    work = services["bot-work"]
    assert work["profiles"] == ["split"] and work["command"] == ["shipyard", "work"]
    assert work["environment"]["SHIPYARD_DATABASE_URL"].startswith("postgresql://")
    assert "8001/healthz" in " ".join(work["healthcheck"]["test"])
    assert services["bot-1"]["environment"]["SHIPYARD_RUN_WORKERS"].startswith("${")


def test_compose_holds_no_secret_values(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if any(word in name for word in ("SECRET", "PASSWORD", "TOKEN")):
                assert str(value).startswith("${"), name


def test_prometheus_scrapes_both_replicas() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["bot-1:8000", "bot-2:8000"]


_EXPRESSION = re.compile(r"\{\{-?\s*(?P<path>\.[A-Za-z.]+)\s*(?P<quote>\|\s*quote\s*)?-?\}\}")


def _render(template: str, values: dict[str, Any], chart: dict[str, Any]) -> str:
    """Helm's simple substitutions only; anything fancier would be left and fail the parse."""
    scope = {
        "Values": values,
        "Release": {"Name": "test"},
        "Chart": {
            "Name": chart["name"],
            "AppVersion": chart["appVersion"],
            "Version": chart["version"],
        },
    }

    def value(match: re.Match[str]) -> str:
        node: Any = scope
        for part in match["path"].strip(".").split("."):
            node = node[part]
        return f'"{node}"' if match["quote"] else str(node)

    rendered = _EXPRESSION.sub(value, template)
    assert "{{" not in rendered, rendered
    return rendered


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    out = {}
    for path in sorted((CHART / "templates").glob("*.yaml")):
        doc = yaml.safe_load(_render(path.read_text(), values, chart))
        for field in ("apiVersion", "kind", "metadata"):
            assert field in doc, (path.name, field)
        out[doc["kind"]] = doc
    return out


def test_the_chart_is_a_valid_helm_v2_chart() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "shipyard"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])


def test_the_deployment_runs_two_replicas_with_health_and_readiness_probes(
    manifests: dict[str, dict[str, Any]],
) -> None:
    deployment = manifests["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/shipyard-ml/shipyard:0.1.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port_names = {p["name"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["port"] in port_names
    refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
    assert refs["configMapRef"] == manifests["ConfigMap"]["metadata"]["name"]
    assert refs["secretRef"] == "shipyard-secrets"
    (migrate,) = spec["template"]["spec"]["initContainers"]
    assert migrate["command"] == ["shipyard", "migrate"]


def test_the_service_selects_the_pods_and_targets_their_port(
    manifests: dict[str, dict[str, Any]],
) -> None:
    service = manifests["Service"]
    pod = manifests["Deployment"]["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in pod["spec"]["containers"][0]["ports"]}


def test_the_configmap_sets_the_public_url_and_no_secret(
    manifests: dict[str, dict[str, Any]],
) -> None:
    data = manifests["ConfigMap"]["data"]
    assert data["SHIPYARD_PUBLIC_URL"].startswith("https://")
    assert not [k for k in data if any(w in k for w in ("SECRET", "TOKEN", "PRIVATE_KEY"))]


def test_every_setting_is_documented() -> None:
    # The runbook lists them all; a setting added later may be documented in README's table.
    text = OPERATIONS.read_text() + (ROOT / "README.md").read_text()
    missing = [
        f"SHIPYARD_{name.upper()}"
        for name in Settings.model_fields
        if f"`SHIPYARD_{name.upper()}`" not in text
    ]
    assert missing == []
