"""What every handler gets: settings, store, GitHub, clock. Built once at start."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.github_api import GitHubApp
from bot.settings import Settings
from bot.store.db import Store


@dataclass(frozen=True)
class BotContext:
    settings: Settings
    store: Store
    github: GitHubApp
    clock: Clock
