"""Choose the traffic router from the operator's configuration.

Without an nginx file a stage's router is the routing table its gateways poll. With one
(`SHIPYARD_SHADOW_NGINX`, `SHIPYARD_CANARY_NGINX`: YAML or JSON, the fields of
`NginxRouterConfig`), nginx splits and mirrors in front of the gateways, and the table still
tells them which versions to load. The file is read each time a stage builds its router, so an
operator's deploy tooling can add a version's upstream without restarting the bot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.rollout.routers.gateway import GatewayRouter
from bot.rollout.routers.nginx import NginxRouter
from bot.rollout.routers.router import RouterError, TrafficRouter
from gateway.router_token import read_router_token

MAX_CONFIG_BYTES = 256 * 1024


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayRouterConfig(_Config):
    kind: Literal["gateway"] = "gateway"
    table: Path = Field(description="The routing table file the gateways poll.")


class NginxRouterConfig(_Config):
    kind: Literal["nginx"] = "nginx"
    directory: Path = Field(description="Where nginx.conf, its pid file and logs live.")
    listen_port: int = Field(ge=1, le=65535)
    listen_host: str = "127.0.0.1"
    upstreams: dict[str, dict[str, str]] = Field(
        description="model -> version -> host:port; `*` for any model or version (a pool of "
        "gateways that load every version the routing table names)."
    )
    worker_connections: int = Field(default=4096, ge=64, le=1_000_000)
    mirror_connect_timeout: str = "200ms"
    mirror_timeout: str = "1s"
    nginx: str = "/usr/sbin/nginx"
    router_token_file: Path | None = Field(
        default=None,
        description="A file holding the token nginx sends the gateways (X-Shipyard-Router-"
        "Token); the gateways' --router-token-file holds the same. Required for nginx in front "
        "of Shipyard's gateways.",
    )
    table: Path | None = Field(
        default=None, description="The routing table the gateways behind nginx poll."
    )


RouterConfig = Annotated[GatewayRouterConfig | NginxRouterConfig, Field(discriminator="kind")]


def make_router(config: GatewayRouterConfig | NginxRouterConfig) -> TrafficRouter:
    """The router `config` names."""
    if isinstance(config, NginxRouterConfig):
        return NginxRouter(
            directory=config.directory,
            listen_port=config.listen_port,
            listen_host=config.listen_host,
            upstreams=config.upstreams,
            worker_connections=config.worker_connections,
            mirror_connect_timeout=config.mirror_connect_timeout,
            mirror_timeout=config.mirror_timeout,
            nginx=config.nginx,
            table=config.table,
            router_token=read_router_token(config.router_token_file)
            if config.router_token_file is not None
            else None,
        )
    return GatewayRouter(config.table)


def stage_router(table: Path, nginx_file: Path | None) -> TrafficRouter:
    """A stage's router: the gateways' table alone, or nginx in front keeping it in step.

    An nginx file that cannot be read or is not valid raises RouterError (the stage waits and
    says so in the bot's log) rather than falling back to routing without nginx."""
    if nginx_file is None:
        return make_router(GatewayRouterConfig(table=table))
    try:
        with nginx_file.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ValueError(f"larger than {MAX_CONFIG_BYTES} bytes")
        fields = yaml.safe_load(raw)
        if not isinstance(fields, dict):
            raise ValueError("not a mapping of settings")
        config = NginxRouterConfig.model_validate({**fields, "table": table})
        if config.router_token_file is None:
            # Without it the gateways would take nginx's mirrors for production requests.
            raise ValueError("router_token_file is required (the gateways check its token)")
        return make_router(config)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        detail = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)[:300]
        raise RouterError(
            f"the nginx router file {nginx_file.name} is not usable", detail=detail
        ) from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
