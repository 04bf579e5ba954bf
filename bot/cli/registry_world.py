"""A complete local world — GitHub sandbox, a model registry, and the bot — for the demo and tests.

Everything talks over real HTTP on loopback: the sandbox delivers signed webhooks to the
bot, and the bot calls the sandbox's REST and LFS endpoints through its ordinary settings.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bot.base.clock import ManualClock
from bot.base.local_server import LocalServer
from bot.base.settings import Settings, load_settings
from bot.base.waiting import wait_until
from bot.sandbox.github import SandboxServer, SandboxState, generate_app_keypair
from bot.service.app import create_app

APP_ID = 4242


REGISTRY = "acme/model-registry"
MAINTAINER = "lead-ml"


def read_model_dir(directory: Path) -> dict[str, bytes]:
    """The registry files of a fixture variant: its `models/` tree, not the test data beside it."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).parts[0] == "models"
    }


@dataclass
class RegistryWorld:
    """The sandbox (always up) and the bot (started, stopped, restarted at will)."""

    fixtures: Path
    database_url: str
    clock: ManualClock = field(default_factory=ManualClock)
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    sandbox_port: int | None = None  # None: any free port
    # The App's (private, public) PEM pair; None: a fresh one. Tests share one pair across
    # their many worlds, since generating an RSA key is a tenth of a second each time.
    app_keypair: tuple[str, str] | None = None
    sandbox: SandboxState = field(init=False)
    sandbox_server: SandboxServer = field(init=False)
    settings: Settings = field(init=False)
    bot: LocalServer | None = field(default=None, init=False)
    app: FastAPI | None = field(default=None, init=False)
    replicas: list[tuple[FastAPI, LocalServer]] = field(default_factory=list, init=False)
    installation_id: int = field(init=False)

    def __post_init__(self) -> None:
        private_pem, public_pem = self.app_keypair or generate_app_keypair()
        self.sandbox = SandboxState(
            app_id=APP_ID, app_public_key_pem=public_pem, clock=self.clock.now
        )
        self.sandbox_server = SandboxServer(self.sandbox, port=self.sandbox_port).start()
        self.webhook_secret = secrets.token_urlsafe(24)
        self._private_pem = private_pem
        self.installation_id = self.sandbox.add_installation("acme")

    # -- the bot ---------------------------------------------------------------------------

    def start_bot(self, *, run_workers: bool = True, **overrides: Any) -> LocalServer:
        values: dict[str, Any] = {
            "github_app_id": APP_ID,
            "github_private_key": self._private_pem,
            "github_webhook_secret": self.webhook_secret,
            "github_api_url": self.sandbox_server.url,
            "database_url": self.database_url,
            "benchmark_dir": self.fixtures / "registry",
            # The fixture policy names ../benchmark/…: the operator allows that directory.
            "benchmark_roots": [str(self.fixtures / "benchmark")],
            "scheduler_tick_s": 0.05,
            # Leases follow the manual clock; renew them often in real time so that a live
            # worker never loses one when a test moves the clock.
            "lease_heartbeat_s": 0.05,
            **self.settings_overrides,
            **overrides,
        }
        bot_port = values.pop("port", None)
        self.settings = load_settings(**values)
        self.app = create_app(self.settings, clock=self.clock, run_workers=run_workers)
        self.bot = LocalServer(self.app, port=bot_port).start()
        self.sandbox.configure_webhooks(f"{self.bot.url}/github/webhooks", self.webhook_secret)
        return self.bot

    def start_replica(self) -> LocalServer:
        """A second bot process on the same database and clock (GitHub still sends to the first)."""
        app = create_app(self.settings, clock=self.clock)
        server = LocalServer(app).start()
        self.replicas.append((app, server))
        return server

    def stop_bot(self) -> None:
        for _, server in self.replicas:
            server.stop()
        self.replicas.clear()
        if self.bot is not None:
            self.bot.stop()
            self.bot = None

    def close(self) -> None:
        self.stop_bot()
        self.sandbox_server.stop()

    # -- the registry ----------------------------------------------------------------------

    def create_registry(
        self, *, policy_text: str | None = None, production: str | None = "production"
    ) -> None:
        files: dict[str, bytes] = {"README.md": b"# Model registry\n"}
        policy = policy_text or (self.fixtures / "registry/shipyard.yml").read_text()
        files[".shipyard.yml"] = policy.encode()
        if production:
            for rel, data in read_model_dir(self.fixtures / "registry" / production).items():
                files[rel] = data
        self.sandbox.create_repo(REGISTRY, installation_id=self.installation_id, files=files)
        self.sandbox.set_permission(REGISTRY, MAINTAINER, "admin")

    def candidate_files(self, variant: str, *, lfs: bool = False) -> dict[str, bytes | None]:
        files: dict[str, bytes | None] = {}
        for rel, data in read_model_dir(self.fixtures / "registry" / variant).items():
            if lfs and "/weights/" in rel:
                data = self.sandbox.store_lfs_object(REGISTRY, data)
            files[rel] = data
        return files

    def open_candidate_pr(
        self,
        variant: str,
        *,
        branch: str | None = None,
        author: str = "data-scientist",
        files: dict[str, bytes | None] | None = None,
        lfs: bool = False,
        draft: bool = False,
    ) -> int:
        branch = branch or f"candidate/{variant}-{secrets.token_hex(3)}"
        self.sandbox.set_permission(REGISTRY, author, "write")
        self.sandbox.commit(
            REGISTRY,
            branch,
            files if files is not None else self.candidate_files(variant, lfs=lfs),
            message=f"Propose {variant}",
            author=author,
        )
        return self.sandbox.open_pull(
            REGISTRY, branch, "main", f"Promote {variant}", author, draft=draft
        )

    def head_sha(self, number: int) -> str:
        return self.sandbox.pull(REGISTRY, number).head_sha

    def check_run(self, number: int, name: str) -> Any:
        return self.sandbox.check_run_named(REGISTRY, self.head_sha(number), name)

    def idle(self) -> bool:
        """Nothing stored is waiting and no worker is mid-job (so moving the clock is fair)."""
        if self.app is None:
            return True
        from bot.promotion.evaluation_queue import active_count
        from bot.runtime.inbox import pending_count

        apps = [self.app, *(app for app, _ in self.replicas)]
        store = self.app.state.ctx.store
        return (
            all(
                a.state.workers.busy == 0
                and a.state.evaluations.busy == 0
                and not a.state.scheduler.busy
                for a in apps
            )
            and pending_count(store) == 0
            and active_count(store) == 0
        )

    def pass_time(self, delta: timedelta) -> None:
        """Move the clock once the bot has finished what it was doing (as real time would)."""
        wait_until(self.idle, timeout_s=60, what="the bot to be idle")
        self.clock.advance(delta)
