"""Run the sandbox with uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from bot.sandbox.app import create_app
from bot.sandbox.state import SandboxState

STARTUP_TIMEOUT_S = 10.0


class SandboxServer:
    """Context manager serving a :class:`SandboxState` at ``http://127.0.0.1:<port>``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        state.base_url = self.url
        self._app = create_app(state)
        config = uvicorn.Config(self._app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name=f"github-sandbox-{port}",
        )

    def start(self) -> SandboxServer:
        """Start serving; returns once uvicorn reports it is accepting connections."""
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        ready = threading.Event()
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("GitHub sandbox did not start")
            ready.wait(0.01)  # poll interval while uvicorn boots, not a fixed delay
        return self

    def attach(self, state: SandboxState) -> None:
        """Serve another state from now on (lets one running server back many tests)."""
        state.base_url = self.url
        self._app.state.sandbox = state
        self.state = state

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
