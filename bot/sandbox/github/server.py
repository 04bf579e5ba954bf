"""Run the sandbox with uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

from bot.base.local_server import LocalServer, free_port
from bot.sandbox.github.app import create_app
from bot.sandbox.github.state import SandboxState


class SandboxServer(LocalServer):
    """Context manager serving a :class:`SandboxState` at ``http://127.0.0.1:<port>``."""

    def __init__(self, state: SandboxState, *, port: int | None = None) -> None:
        port = port or free_port()
        state.base_url = f"http://127.0.0.1:{port}"  # URLs in responses name this server
        self.state = state
        self._app = create_app(state)
        super().__init__(self._app, port=port, lifespan="off", access_log=False)

    def start(self, timeout_s: float = 10) -> SandboxServer:
        """Start serving; returns once uvicorn reports it is accepting connections."""
        super().start(timeout_s)
        return self

    def attach(self, state: SandboxState) -> None:
        """Serve another state from now on (lets one running server back many tests)."""
        state.base_url = self.url
        self._app.state.sandbox = state
        self.state = state

    def __enter__(self) -> SandboxServer:
        return self.start()
