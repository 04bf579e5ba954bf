"""A loopback PagerDuty for tests and the demo: the Events API v2 (`POST /v2/enqueue`) with
PagerDuty's validation, answers and de-duplication, and `/_sandbox/` hooks to see incidents and
arm faults."""

from bot.sandbox.pagerduty.app import FAULTS, Incident, PagerDutyState, create_app, problems
from bot.sandbox.pagerduty.server import PagerDutySandboxServer

__all__ = [
    "FAULTS",
    "Incident",
    "PagerDutySandboxServer",
    "PagerDutyState",
    "create_app",
    "problems",
]
