"""The gateway's settings: built once by the CLI (or a test) and handed to `create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gateway.clock import Clock, SystemClock
from gateway.mirror import MirrorJob

MirrorMode = Literal["process", "thread"]
MIRROR_MODES: tuple[MirrorMode, ...] = ("process", "thread")


@dataclass(frozen=True)
class GatewayConfig:
    store_url: str
    routing_path: Path
    cache_dir: Path | None = None  # where fetched bundles are verified; a temp dir by default
    max_body_bytes: int = 1024 * 1024
    max_rows: int = 1024
    mirror_queue: int = 1024
    mirror_workers: int = 1
    # `process`: the shadow scores in a worker process at lower CPU priority (off the GIL);
    # `thread`: in the mirror worker threads of this process.
    mirror_mode: MirrorMode = "process"
    # Added to the shadow worker's nice value: production first, yet at 10 a loaded two-core
    # machine starved the worker and the mirror queue overflowed (see docs/gateway.md).
    shadow_niceness: int = 5
    log_share: float = 1.0  # share of requests (by request id) written to the prediction log
    log_flush_rows: int = 10_000
    log_flush_s: float = 5.0
    reload_every_s: float = 0.5
    retry_failed_s: float = 10.0  # how often versions that failed to load are tried again
    # Behind a traffic router (nginx): the router splits and mirrors, and names the slot in
    # `X-Shipyard-Variant`; this process answers from that slot's version and never mirrors.
    # Only for gateways no client reaches except through the router, which sets the header.
    behind_router: bool = False
    router_token: str | None = None  # required behind a router (gateway/router_token.py)
    clock: Clock = field(default_factory=SystemClock)
    # Runs in the mirror worker thread (in this process, in either mode) before each shadow
    # call: operators' tracing, tests' slow shadow.
    before_shadow: Callable[[MirrorJob], None] | None = None
