"""What rendering and webhook building read of the sandbox's state.

A protocol rather than `SandboxState` itself, so that `state` (which sends webhooks) and the
modules it calls do not import each other.
"""

from __future__ import annotations

from typing import Any, Protocol

from bot.sandbox.github.models import AppInfo, Installation, User


class StateView(Protocol):
    base_url: str
    app: AppInfo
    installations: dict[int, Installation]

    def user(self, login: str) -> User: ...

    def pull_files(self, full_name: str, number: int) -> list[dict[str, Any]]: ...
