"""A loopback HTTP proxy that injects faults between the bot and the GitHub sandbox.

The bot's `github_api_url` points here; every request is forwarded to the sandbox unless a
rule matches its method and path. A rule can
- `fail`: answer `status` without forwarding (GitHub never saw it),
- `fail_after`: forward, then answer `status` instead of GitHub's answer (it took effect),
- `drop_after`: forward, then close the connection without answering (a lost answer, as
  after a client timeout),
- `hold_answer`: forward, then hold GitHub's answer for `seconds` (past the client's timeout),
- `delay`: wait `seconds`, then forward,
for the next `times` matching requests, or for `duration_s` seconds (wall time), or until
removed. Raw asyncio, so a connection can really be dropped mid-exchange.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field

import httpx

from bot.base.local_server import free_port

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length"}


@dataclass
class Rule:
    method: str
    path_regex: str
    action: str  # fail | fail_after | drop_after | hold_answer | delay
    status: int = 502
    seconds: float = 0.0
    times: int | None = 1  # None: until the duration ends or the rule is removed
    until: float | None = None  # time.monotonic() deadline
    matched: int = field(default=0)

    def applies(self, method: str, path: str) -> bool:
        if self.until is not None and time.monotonic() > self.until:
            return False
        if self.times is not None and self.matched >= self.times:
            return False
        return self.method == method and re.search(self.path_regex, path) is not None


class FaultProxy:
    """`with FaultProxy(upstream) as proxy: proxy.fail_after("POST", r"/comments$")`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rules: list[Rule] = []
        self.faults_injected = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- rules ------------------------------------------------------------------------------

    def add(
        self,
        method: str,
        path_regex: str,
        action: str,
        *,
        status: int = 502,
        seconds: float = 0.0,
        times: int | None = 1,
        duration_s: float | None = None,
    ) -> Rule:
        assert action in ("fail", "fail_after", "drop_after", "hold_answer", "delay"), action
        rule = Rule(
            method=method.upper(),
            path_regex=path_regex,
            action=action,
            status=status,
            seconds=seconds,
            times=None if duration_s is not None else times,
            until=None if duration_s is None else time.monotonic() + duration_s,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail(self, method: str, path_regex: str, **kw: object) -> Rule:
        return self.add(method, path_regex, "fail", **kw)  # type: ignore[arg-type]

    def fail_after(self, method: str, path_regex: str, **kw: object) -> Rule:
        return self.add(method, path_regex, "fail_after", **kw)  # type: ignore[arg-type]

    def drop_after(self, method: str, path_regex: str, **kw: object) -> Rule:
        return self.add(method, path_regex, "drop_after", **kw)  # type: ignore[arg-type]

    def remove(self, rule: Rule) -> None:
        with self._lock:
            if rule in self.rules:
                self.rules.remove(rule)

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.applies(method, path):
                    rule.matched += 1
                    self.faults_injected += 1
                    return rule
        return None

    # -- server -----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=60)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def stop(self) -> None:
        async def _stop() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            if self._client is not None:
                await self._client.aclose()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Handle one request on a keep-alive connection; False when the connection ends."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        rule = self._take(method, path)
        if rule is not None and rule.action == "delay":
            await asyncio.sleep(rule.seconds)
        if rule is not None and rule.action == "fail":
            await _write(writer, rule.status, {"message": "Server Error"})
            return True
        assert self._client is not None
        forward = [(k, v) for k, v in headers if k.lower() not in _HOP | {"host"}]
        response = await self._client.request(method, target, content=body, headers=forward)
        if rule is not None and rule.action == "drop_after":
            return False  # the connection closes with no answer at all
        if rule is not None and rule.action == "hold_answer":
            await asyncio.sleep(rule.seconds)
        if rule is not None and rule.action == "fail_after":
            await _write(writer, rule.status, {"message": "Server Error"})
            return True
        keep = [(k, v) for k, v in response.headers.items() if k.lower() not in _HOP]
        await _write_raw(writer, response.status_code, keep, response.content)
        return True


async def _write(writer: asyncio.StreamWriter, status: int, body: dict[str, str]) -> None:
    await _write_raw(
        writer, status, [("Content-Type", "application/json")], json.dumps(body).encode()
    )


async def _write_raw(
    writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], content: bytes
) -> None:
    lines = [f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(content)}", "", ""]
    writer.write("\r\n".join(lines).encode("latin-1") + content)
    await writer.drain()
