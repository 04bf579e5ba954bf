"""The one error of the distributed engine: the evaluation could not run, and why."""

from __future__ import annotations


class DistributedError(ValueError):
    """Shown to the user as is: no traceback, no secrets, at most a scheduler's host:port."""
