"""Render the nginx configuration for a routing table, and read the table back from it.

Pure text in, text out. The canary weight becomes a `split_clients` on the request id; the
shadow becomes a `mirror` subrequest, sampled by a second `split_clients` when the share is
below 100%. nginx splits in steps of 0.01%, so weights and shares are rounded to that first
(`rounded`), and the rounded values are what the router reports as in effect.

The table the file was rendered from is kept in its third line, so the installed file is the
one record of what is in effect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import jinja2
from pydantic import ValidationError

from gateway.routing import ModelRoute, Routing

TABLE_MARK = "# shipyard-routing: "
# host:port, [ipv6]:port or unix:/path: no spaces, quotes, braces or semicolons can reach nginx.
ADDRESS = re.compile(
    r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}$|^unix:/[\w./-]{1,200}$"
)
# An upstream is a model's version: model name -> version -> address; `*` stands for any.
Upstreams = Mapping[str, Mapping[str, str]]
ANY = "*"


class ConfigError(ValueError):
    """The route cannot be rendered (an unknown version, a bad address)."""


@dataclass(frozen=True)
class Options:
    directory: str
    listen: str
    worker_processes: int = 1
    worker_connections: int = 4096
    client_max_body_size: str = "8m"
    mirror_connect_timeout: str = "200ms"
    mirror_timeout: str = "1s"
    user: str | None = None
    # Sent with every proxied request: gateways behind nginx honour X-Shipyard-Variant only
    # with it, so a client that reaches a gateway directly cannot pose as nginx.
    router_token: str | None = None


def rounded(route: ModelRoute) -> ModelRoute:
    """`route` with its weight and share at nginx's 0.01% steps."""
    update: dict[str, object] = {}
    if route.canary is not None:
        update["canary"] = route.canary.model_copy(update={"weight": round(route.canary.weight, 4)})
    if route.shadow is not None:
        share = round(route.shadow.mirror_share, 4)
        update["shadow"] = route.shadow.model_copy(update={"mirror_share": share})
    return route.model_copy(update=update)


def render(routing: Routing, upstreams: Upstreams, options: Options) -> str:
    """The whole nginx.conf for `routing`."""
    models = [_model_view(name, routing.models[name], upstreams) for name in sorted(routing.models)]
    return _template().render(
        table_json=routing.model_dump_json(),
        revision=routing.revision,
        models=models,
        **options.__dict__,
    )


def table_of(text: str) -> Routing:
    """The routing table a rendered file was made from; ConfigError if it has none."""
    for line in text.splitlines()[:5]:
        if line.startswith(TABLE_MARK):
            try:
                return Routing.model_validate_json(line.removeprefix(TABLE_MARK))
            except ValidationError:
                break
    raise ConfigError("the installed nginx configuration was not rendered by Shipyard")


def _percent(share: float) -> str:
    return f"{share * 100:.2f}%"


def _model_view(name: str, route: ModelRoute, upstreams: Upstreams) -> dict[str, object]:
    route = rounded(route)
    canary = route.canary if route.canary is not None and route.canary.weight > 0 else None
    shadow = route.shadow if route.shadow is not None and route.shadow.mirror_share > 0 else None
    slots = [("production", route.production.version)]
    if canary is not None:
        slots.append(("canary", canary.version))
    if shadow is not None:
        slots.append(("shadow", shadow.version))
    return {
        "name": name,
        "production": route.production,
        "canary": canary,
        "shadow": shadow,
        "slots": [
            {"variant": v, "version": ver, "address": _address(upstreams, name, ver)}
            for v, ver in slots
        ],
        # A weight of 100% needs no split: every answer comes from the canary.
        "canary_split": canary is not None and canary.weight < 1,
        "answer": "canary" if canary is not None else "production",
        "canary_percent": _percent(canary.weight) if canary is not None else "",
        "mirror_split": shadow is not None and shadow.mirror_share < 1,
        "mirror_percent": _percent(shadow.mirror_share) if shadow is not None else "",
    }


def _address(upstreams: Upstreams, model: str, version: str) -> str:
    """The model's version's own address, else the model's `*`, else the `*` model's: a pool of
    gateways that load every version the routing table names serves versions nobody listed."""
    address = next(
        (
            found
            for m, v in ((model, version), (model, ANY), (ANY, version), (ANY, ANY))
            if (found := upstreams.get(m, {}).get(v)) is not None
        ),
        None,
    )
    if address is None:
        raise ConfigError(f"no upstream is configured for {model} version {version}")
    if not ADDRESS.match(address):
        raise ConfigError(f"the upstream address for {model} version {version} is not host:port")
    return address


def _template() -> jinja2.Template:
    source = (
        resources.files("bot.rollout.routers").joinpath("nginx.conf.j2").read_text(encoding="utf-8")
    )
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - nginx config, not HTML; every value is validated
    )
    return env.from_string(source)
