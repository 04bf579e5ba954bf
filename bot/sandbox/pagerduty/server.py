"""Serve the PagerDuty double on loopback; `url` is what SHIPYARD_PAGERDUTY_EVENTS_URL is set to."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.base.local_server import LocalServer
from bot.base.tls import shared_tls
from bot.sandbox.pagerduty.app import ConnectionDropped, PagerDutyState, create_app


class QuietDrops(logging.Filter):
    """A connection the double closes on purpose is not an error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


class PagerDutySandboxServer:
    """`with PagerDutySandboxServer(PagerDutyState(key)) as pd: pd.url` — plus the test hooks."""

    def __init__(self, state: PagerDutyState) -> None:
        self.state = state
        self._server = LocalServer(create_app(state))
        self._filter = QuietDrops()

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> PagerDutySandboxServer:
        logging.getLogger("uvicorn.error").addFilter(self._filter)
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        logging.getLogger("uvicorn.error").removeFilter(self._filter)

    def __enter__(self) -> PagerDutySandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the test hooks, over HTTP as a test (or the demo) would use them ---------------------

    def incidents(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/_sandbox/incidents", timeout=10, verify=shared_tls()).json()
        return list(answer["incidents"])

    def received(self) -> int:
        answer = httpx.get(f"{self.url}/_sandbox/incidents", timeout=10, verify=shared_tls())
        return int(answer.json()["received"])

    def arm(self, fault: str, times: int = 1) -> None:
        response = httpx.post(
            f"{self.url}/_sandbox/faults",
            json={"fault": fault, "times": times},
            timeout=10,
            verify=shared_tls(),
        )
        response.raise_for_status()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_sandbox/reset", timeout=10, verify=shared_tls()).raise_for_status()
