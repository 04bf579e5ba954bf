"""Reaching the operator's Dask scheduler: a few short attempts, then a plain failure.

The address comes only from the operator (SHIPYARD_DASK_SCHEDULER or `--dask-scheduler`);
messages name host:port only, never credentials or query strings in the address.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from evaluators.distributed.errors import DistributedError

if TYPE_CHECKING:
    from distributed import Client

ATTEMPTS = 3
TIMEOUT_S = 5.0
PAUSE_S = 1.0


def shown_address(address: str) -> str:
    """host:port of an address, for messages (no scheme, user, password or path)."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    return f"{host}:{port}" if port is not None else host


def require_scheduler(address: str | None) -> str:
    """The configured scheduler, or the failure that says how to configure one."""
    if address is None or not address.strip():
        raise DistributedError(
            "the policy asks for statistics.engine: dask, but no Dask scheduler is configured "
            "(the operator sets SHIPYARD_DASK_SCHEDULER or passes --dask-scheduler); "
            "the evaluation does not fall back to the local engine"
        )
    return address.strip()


def _reachable(address: str, timeout_s: float) -> bool:
    """A TCP connection to the scheduler's port opens (tcp:// and tls:// addresses)."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        return False
    if parts.hostname is None or port is None:
        return parts.scheme not in ("tcp", "tls")  # other transports: let Client try
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def connect(
    address: str,
    *,
    attempts: int = ATTEMPTS,
    timeout_s: float = TIMEOUT_S,
    pause_s: float = PAUSE_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Client:
    """A client of the scheduler, after at most `attempts` tries of `timeout_s` each."""
    from distributed import Client

    for attempt in range(1, attempts + 1):
        if attempt > 1:
            sleep(pause_s)
        # A plain TCP probe first: a Client that failed to connect complains at exit.
        if not _reachable(address, timeout_s):
            continue
        try:
            with _quiet():
                return Client(  # type: ignore[no-untyped-call]
                    address, timeout=timeout_s, set_as_default=False
                )
        except (OSError, TimeoutError, ValueError):
            continue
    raise DistributedError(
        f"could not reach the Dask scheduler at {shown_address(address)} "
        f"({attempts} attempts, {timeout_s:g} s each); the evaluation did not run"
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("distributed", "distributed.client")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
