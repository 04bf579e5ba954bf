"""Metrics (Prometheus) and logs (JSON lines carrying the delivery id and PR number).

Counters live in prometheus-client's process registry; store-derived gauges (inbox depth)
are computed per app at scrape time. GitHub calls are labelled by method and *templated*
route so that label values stay few however many repositories and PRs there are.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

DELIVERY_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "delivery_id", default=None
)
PR_NUMBER: contextvars.ContextVar[int | None] = contextvars.ContextVar("pr_number", default=None)

DELIVERY_ATTEMPTS = Counter(
    "shipyard_delivery_attempts", "Delivery handling attempts, by event.", ["event"]
)
DELIVERY_FAILURES = Counter(
    "shipyard_delivery_failures", "Delivery attempts that raised, by event.", ["event"]
)
DELIVERIES_EXHAUSTED = Counter(
    "shipyard_deliveries_exhausted", "Deliveries given up after every attempt, by event.", ["event"]
)
EVALUATION_SECONDS = Histogram(
    "shipyard_evaluation_duration_seconds",
    "Wall time of one evaluation attempt, by outcome.",
    ["outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
EVALUATION_RETRIES = Counter(
    "shipyard_evaluation_retries",
    "Evaluations retried after a transient failure, by cause.",
    ["cause"],
)
GITHUB_CALLS = Counter(
    "shipyard_github_calls", "GitHub REST calls, by method and templated route.", ["operation"]
)
GITHUB_ERRORS = Counter(
    "shipyard_github_errors",
    "GitHub REST calls that failed, by operation and status (0: no answer).",
    ["operation", "status"],
)
RATE_LIMIT_REMAINING = Gauge(
    "shipyard_github_rate_limit_remaining", "x-ratelimit-remaining on the last GitHub answer."
)

_ROUTE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/repos/[^/]+/[^/]+"), "/repos/{owner}/{repo}"),
    (re.compile(r"^/orgs/[^/]+/teams/[^/]+"), "/orgs/{org}/teams/{team_slug}"),
    (re.compile(r"^/(orgs|users)/(?!{)[^/]+"), r"/\1/{name}"),
    (re.compile(r"/contents/.*$"), "/contents/{path}"),
    (re.compile(r"/(git/trees|git/blobs|git/commits|commits|git/refs?)/[^/]+"), r"/\1/{ref}"),
    (re.compile(r"/collaborators/[^/]+"), "/collaborators/{username}"),
    (re.compile(r"/memberships/[^/]+"), "/memberships/{username}"),
    (re.compile(r"/[0-9]+(?=/|$)"), "/{id}"),
)


def route_template(path: str) -> str:
    """`/repos/acme/reg/pulls/7/files` → `/repos/{owner}/{repo}/pulls/{id}/files`."""
    path = path.split("?", 1)[0]
    for pattern, replacement in _ROUTE_RULES:
        path = pattern.sub(replacement, path)
    return path[:200]


def record_github_call(
    method: str, path: str, status: int, headers: dict[str, str] | None = None
) -> None:
    """Count one GitHub call (status 0: no HTTP answer) and note the rate limit left."""
    operation = f"{method.upper()} {route_template(path)}"
    GITHUB_CALLS.labels(operation).inc()
    if status == 0 or status >= 400:
        GITHUB_ERRORS.labels(operation, str(status)).inc()
    remaining = {k.lower(): v for k, v in (headers or {}).items()}.get("x-ratelimit-remaining")
    if remaining is not None and remaining.isdigit():
        RATE_LIMIT_REMAINING.set(int(remaining))


def metrics_text(store_gauges: Callable[[CollectorRegistry], None]) -> bytes:
    """The process counters plus this app's store gauges, in Prometheus text format."""
    local = CollectorRegistry()
    store_gauges(local)
    return generate_latest(REGISTRY) + generate_latest(local)


@contextmanager
def log_context(*, delivery_id: str | None = None, pr_number: int | None = None) -> Iterator[None]:
    """Log records inside the block carry these fields."""
    delivery = DELIVERY_ID.set(delivery_id) if delivery_id is not None else None
    pr = PR_NUMBER.set(pr_number) if pr_number is not None else None
    try:
        yield
    finally:
        if pr is not None:
            PR_NUMBER.reset(pr)
        if delivery is not None:
            DELIVERY_ID.reset(delivery)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.delivery_id = getattr(record, "delivery_id", None) or DELIVERY_ID.get()
        record.pr_number = getattr(record, "pr_number", None) or PR_NUMBER.get()
        return True


_installed = False


def install_record_context() -> None:
    """Every log record (whichever handler gets it) carries delivery_id and pr_number."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.delivery_id = DELIVERY_ID.get()
        record.pr_number = PR_NUMBER.get()
        return record

    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; exception text goes to the operator's log, never to a PR."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("delivery_id", "pr_number", "error_id"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(*, level: str, fmt: str, stream: Any = None) -> logging.Handler:
    """Root logging as JSON lines (or text), each record enriched with the context fields."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [delivery=%(delivery_id)s pr=%(pr_number)s] "
                "%(message)s"
            )
        )
    handler.addFilter(_ContextFilter())
    install_record_context()
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    return handler
