"""Choose the traffic router from the operator's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.rollout.routers.gateway import GatewayRouter
from bot.rollout.routers.nginx import NginxRouter
from bot.rollout.routers.router import TrafficRouter


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayRouterConfig(_Config):
    kind: Literal["gateway"] = "gateway"
    table: Path = Field(description="The routing table file the gateways poll.")


class NginxRouterConfig(_Config):
    kind: Literal["nginx"]
    directory: Path = Field(description="Where nginx.conf, its pid file and logs live.")
    listen_port: int = Field(ge=1, le=65535)
    listen_host: str = "127.0.0.1"
    upstreams: dict[str, dict[str, str]] = Field(description="model -> version -> host:port")
    worker_connections: int = Field(default=4096, ge=64, le=1_000_000)


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
        )
    return GatewayRouter(config.table)
