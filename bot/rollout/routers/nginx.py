"""The nginx router: `split_clients` for the canary weight and `mirror` for the shadow share,
in front of one upstream (a Shipyard gateway) per model version.

A change is rendered to a candidate file, checked with `nginx -t`, renamed into place, and only
then is the running nginx reloaded; a configuration nginx rejects is never installed. The change
is in effect when the reloaded nginx answers with the new revision on
`/_shipyard/routing-revision`; if it never does, the previous file is put back and reloaded.
Changes take turns under a lock beside the file.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import ValidationError

from bot.base.tls import shared_tls
from bot.rollout.routers.file_lock import exclusive
from bot.rollout.routers.nginx_config import (
    ConfigError,
    Options,
    Upstreams,
    render,
    rounded,
    table_of,
)
from bot.rollout.routers.router import RouterError, Slot, without_slot
from gateway.router_token import PATTERN as router_token_pattern
from gateway.routing import ModelRoute, Routing, load_routing, save_routing

CONFIG_NAME = "nginx.conf"
REVISION_PATH = "/_shipyard/routing-revision"
# "2026/12/05 20:34:49 [emerg] 11047#11047: host not found in upstream ..." -> the message
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])$")
_DURATION = re.compile(r"^[0-9]{1,6}(?:ms|s)$")
_NGINX_MESSAGE = re.compile(r"\[(?:emerg|alert|error)\] (?:\d+#\d+: )?(.*)$")


class NginxRouter:
    def __init__(
        self,
        *,
        directory: Path,
        listen_port: int,
        upstreams: Upstreams,
        listen_host: str = "127.0.0.1",
        nginx: str = "/usr/sbin/nginx",
        worker_connections: int = 4096,
        mirror_connect_timeout: str = "200ms",
        mirror_timeout: str = "1s",
        user: str | None = None,
        reload_timeout_s: float = 15.0,
        lock_timeout_s: float = 30.0,
        table: Path | None = None,
        router_token: str | None = None,
    ) -> None:
        # Everything below lands in nginx.conf: only values that cannot change its meaning.
        if not _HOST.match(listen_host) or not 0 < listen_port < 65536:
            raise ValueError("listen_host:listen_port must be a host name or address and a port")
        if not (_DURATION.match(mirror_connect_timeout) and _DURATION.match(mirror_timeout)):
            raise ValueError("mirror timeouts are nginx durations such as 200ms or 1s")
        if user is not None and not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", user):
            raise ValueError("user must be a system user name")
        if router_token is not None and not router_token_pattern.fullmatch(router_token):
            raise ValueError("the router token must be 16-128 letters, digits, - or _")
        self.directory = directory.resolve()
        self.config = self.directory / CONFIG_NAME
        self.port = listen_port
        self._upstreams = upstreams
        self._nginx = nginx
        self._options = Options(
            directory=str(self.directory),
            listen=f"{listen_host}:{listen_port}",
            worker_connections=worker_connections,
            mirror_connect_timeout=mirror_connect_timeout,
            mirror_timeout=mirror_timeout,
            user=user,
            router_token=router_token,
        )
        self._reload_timeout_s = reload_timeout_s
        self._lock = self.directory / (CONFIG_NAME + ".lock")
        self._lock_timeout_s = lock_timeout_s
        # The routing table the gateways behind nginx poll (`shipyard gateway serve
        # --behind-router`), kept equal to nginx's: it tells them which versions to load.
        self._table = table

    # -- the port -------------------------------------------------------------------------

    def apply(self, model: str, route: ModelRoute) -> None:
        """Put `route` into effect for `model`; a no-op when it already is."""
        with exclusive(self._lock, timeout_s=self._lock_timeout_s):
            self._change(model, rounded(route))

    def current(self, model: str) -> ModelRoute | None:
        """The route in the installed (and, after a successful apply, running) configuration."""
        return self._installed().models.get(model)

    def remove_slot(self, model: str, slot: Slot) -> None:
        """Empty `slot` of `model`'s route; a no-op when there is nothing to remove."""
        with exclusive(self._lock, timeout_s=self._lock_timeout_s):
            route = self._installed().models.get(model)
            if route is not None:
                self._change(model, without_slot(route, slot))

    # -- first start -----------------------------------------------------------------------

    def install(self) -> Path:
        """Write a checked configuration for the routes in effect, without reloading: what an
        operator starts nginx with (`nginx -p <dir> -c <dir>/nginx.conf`). At first those are
        the gateways' table's (production as the gateways already serve it), else none."""
        with exclusive(self._lock, timeout_s=self._lock_timeout_s):
            routing = self._installed() if self.config.exists() else self._table_routing()
            self._install_checked(self._render(routing))
        return self.config

    def _table_routing(self) -> Routing:
        if self._table is None:
            return Routing()
        try:
            return load_routing(self._table)
        except (OSError, ValidationError) as exc:
            raise RouterError(
                "the gateways' routing table could not be read", detail=str(exc)[:300]
            ) from None

    # -- the steps --------------------------------------------------------------------------

    def _change(self, model: str, route: ModelRoute) -> None:
        installed = self._installed()
        if installed.models.get(model) == route:
            # Also what finishes a change a crash interrupted: the table, then the reload.
            self._sync_table(installed)
            if self._running_revision() != installed.revision:
                self._reload_and_confirm(installed.revision)
            return
        try:
            changed = Routing(
                revision=installed.revision + 1, models={**installed.models, model: route}
            )
        except ValidationError as exc:
            raise RouterError("the route is not valid", detail=str(exc)[:300]) from None
        previous = self.config.read_text(encoding="utf-8") if self.config.exists() else None
        text = self._render(changed)
        # The gateways start loading a new version before nginx sends it traffic; until they
        # have, they answer a canary's share from production and refuse its mirrors (counted).
        self._sync_table(changed)
        try:
            self._install_checked(text)
        except RouterError:
            self._sync_table(installed)
            raise
        try:
            self._reload_and_confirm(changed.revision)
        except RouterError:
            # The old route keeps serving: reinstall the file that was in effect (none at all
            # if nginx was never set up, so nothing claims a route that never ran).
            if previous is None:
                self.config.unlink(missing_ok=True)
            else:
                self._put_back(previous)
            self._sync_table(installed)
            raise

    def _sync_table(self, routing: Routing) -> None:
        """Make the gateways' routing table say what nginx's configuration says."""
        if self._table is None:
            return
        try:
            if load_routing(self._table) == routing:
                return
            save_routing(self._table, routing)
        except (OSError, ValidationError) as exc:
            raise RouterError(
                "the gateways' routing table could not be written", detail=str(exc)[:300]
            ) from None

    def _render(self, routing: Routing) -> str:
        try:
            return render(routing, self._upstreams, self._options)
        except ConfigError as exc:
            raise RouterError("the route cannot be served by nginx", detail=str(exc)) from None

    def _install_checked(self, text: str) -> None:
        """Write `text` beside the live file, `nginx -t` it, and only then rename it into place."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.directory / "temp" / name).mkdir(parents=True, exist_ok=True)
        fd, candidate = tempfile.mkstemp(dir=self.directory, prefix=".nginx-", suffix=".conf")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            result = self._run("-t", config=Path(candidate))
            if result.returncode != 0:
                raise RouterError("nginx rejected the new configuration", detail=_why(result))
            os.replace(candidate, self.config)
        finally:
            Path(candidate).unlink(missing_ok=True)

    def _reload_and_confirm(self, revision: int) -> None:
        before = self._accepting_workers()
        result = self._run("-s", "reload", config=self.config)
        if result.returncode == 0 and self._confirmed(revision, before):
            return
        reason = (
            "nginx could not be reloaded (is it running with this configuration?)"
            if result.returncode != 0
            else "nginx did not take up the new configuration in time"
        )
        raise RouterError(reason, detail=_why(result))

    def _put_back(self, previous: str) -> None:
        """Reinstall the file that was in effect and reload it."""
        self._install_checked(previous)
        self._run("-s", "reload", config=self.config)

    def _confirmed(self, revision: int, old_workers: set[int]) -> bool:
        """The new revision answers three times in a row from fresh connections, and every
        worker that was accepting before the reload has stopped accepting.

        Old workers close their listening sockets only when they get round to the master's
        signal: on a loaded machine one went on taking 13 of 20 fresh connections after the
        new revision had answered. Without /proc the streak alone has to do."""
        deadline = time.monotonic() + self._reload_timeout_s
        streak = 0
        while time.monotonic() < deadline:
            streak = streak + 1 if self._running_revision() == revision else 0
            if streak >= 3 and not (old_workers & self._accepting_workers()):
                return True
            time.sleep(0.02)  # polling nginx with a deadline
        return False

    def _accepting_workers(self) -> set[int]:
        """The master's workers that still take connections: nginx retitles a worker
        "worker process is shutting down" in the same step as it closes its listening
        sockets. Linux /proc; an empty set where that cannot be read."""
        try:
            master = (self.directory / "nginx.pid").read_text(encoding="ascii").strip()
            entries = list(Path("/proc").iterdir())
        except OSError:
            return set()
        found = set()
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
                parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
            except (OSError, IndexError):
                continue  # gone meanwhile, or not ours to read
            if parent == master and title.endswith(b"worker process"):
                found.add(int(entry.name))
        return found

    def _running_revision(self) -> int | None:
        url = f"http://127.0.0.1:{self.port}{REVISION_PATH}"
        try:
            answer = httpx.get(
                url, timeout=1.0, headers={"Connection": "close"}, verify=shared_tls()
            )
            return int(answer.text.strip()) if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def _installed(self) -> Routing:
        try:
            return table_of(self.config.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Routing()
        except (OSError, ConfigError) as exc:
            raise RouterError(
                "the installed nginx configuration cannot be read", detail=str(exc)
            ) from None

    def _run(self, *args: str, config: Path) -> subprocess.CompletedProcess[str]:
        command = [self._nginx, "-p", str(self.directory), "-c", str(config)]
        command += ["-e", str(self.directory / "error.log"), *args]
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RouterError("nginx could not be run", detail=str(exc)) from None


def _why(result: subprocess.CompletedProcess[str]) -> str:
    """nginx's own reason: its first [emerg]/[alert]/[error] message, bounded."""
    for line in result.stderr.splitlines():
        found = _NGINX_MESSAGE.search(line)
        if found:
            return found.group(1)[:300]
    return result.stderr.strip()[:300]
