"""What every handler gets: settings, store, GitHub, clock. Built once at start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.base.clock import Clock
from bot.base.settings import Settings
from bot.github.api import GitHubApp
from bot.store.db import Store
from evaluators.artifacts.audit_process import ArtifactAuditor
from evaluators.policy import Policy


@dataclass(frozen=True)
class BotContext:
    settings: Settings
    store: Store
    github: GitHubApp
    clock: Clock
    # Parses the PRs' artifacts away from the bot's memory, secrets and GIL.
    auditor: ArtifactAuditor
    wake_evaluations: Wakeup = field(default_factory=lambda: Wakeup())
    wake_inbox: Wakeup = field(default_factory=lambda: Wakeup())
    # Called after every gate refresh with the new state (Slack notifications subscribe).
    promotion_listeners: list[PromotionListener] = field(default_factory=list)
    # Called when a production monitoring alert is raised, changes or resolves (Slack).
    alert_listeners: list[AlertListener] = field(default_factory=list)
    # Set at shutdown: heartbeats stop, so leases lapse and another replica takes the work.
    stopping: threading.Event = field(default_factory=threading.Event)


class PromotionListener(Protocol):
    def __call__(self, change: PromotionChange) -> None: ...


@dataclass(frozen=True)
class PromotionChange:
    """What a listener learns after the gate of a PR was recomputed and published."""

    repository: str
    installation_id: int
    pr_number: int
    pr_title: str
    pr_url: str | None
    head_sha: str
    gate_title: str
    gate_conclusion: str | None  # success | action_required | failure | None while evaluating
    window_ends_at: datetime | None
    headlines: tuple[str, ...]  # one per model: the evaluation's short title
    report_urls: tuple[str, ...]
    policy: Policy
    shadow_lines: tuple[str, ...] = ()  # one per model in shadow: "<model>: <progress>"


class AlertListener(Protocol):
    def __call__(self, alert: MonitorAlert) -> None: ...


@dataclass(frozen=True)
class MonitorAlert:
    """A production monitoring alert's latest state (one per model, check and episode: `key`
    names it, so a listener edits what it posted for the same key)."""

    key: str
    repository: str
    model: str
    version: str
    check: str  # "feature drift", "prediction drift", "data quality"
    status: str  # warning | critical | resolved
    title: str  # plain text
    line: str  # the latest worst finding, plain text
    report_url: str | None
    issue_number: int | None
    policy: Policy


class Wakeup:
    """A call that wakes whoever subscribed (the evaluation workers), if anyone did."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def __call__(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()
