"""How Shipyard's model worker processes are started, limited and explained (stdlib only, so a
caller can start one before importing anything heavy)."""

from __future__ import annotations

import os
import re
import select
import signal
import time
from pathlib import Path
from typing import IO

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME", "SYSTEMROOT")
_LOG_TAIL_CHARS = 2000


def worker_env(threads: int) -> dict[str, str]:
    """A minimal environment: the worker gets no secrets, and one thread per library."""
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    existing = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_PACKAGE_ROOT) + (os.pathsep + existing if existing else "")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def log_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-_LOG_TAIL_CHARS:].strip()


def _is_memory_failure(text: str) -> bool:
    """Messages that allocators and the dynamic loader give when RLIMIT_AS is reached."""
    signs = ("bad_alloc", "failed to allocate", "failed to map segment", "cannot allocate memory")
    lowered = text.lower()
    return any(sign in lowered for sign in signs)


# "onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument: ..." -> "..."
_EXCEPTION_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*\s*:\s+")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[\w.+@-]+/)+[\w.+@-]*")
_REASON_CHARS = 300


def plain_reason(text: str, *, last: bool = False) -> str:
    """A failing library's reason as a reviewer may read it: one line (the first, or the last
    of a log), without the Python exception's class, file paths or control characters, bounded.
    The author of the model may have chosen its words: the report escapes it where shown."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = _EXCEPTION_PREFIX.sub("", lines[-1] if last else lines[0])
    line = _ABSOLUTE_PATH.sub("<path>", line)
    line = "".join(c if c.isprintable() else " " for c in line)
    return line[:_REASON_CHARS]


def describe_failure(exc: BaseException, memory_mb: int) -> str:
    """What a model's failure inside the worker tells the PR: never a traceback or a path."""
    text = str(exc)
    if isinstance(exc, MemoryError) or _is_memory_failure(text):
        return f"exceeded the memory limit of {memory_mb} MB"
    reason = plain_reason(text)
    return f"the model failed: {reason}" if reason else "the model failed"


def describe_exit(
    returncode: int, memory_mb: int, log: str, *, what: str = "inference worker"
) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (possibly over the memory limit)" if name in ("SIGKILL", "SIGSEGV") else ""
        return f"{what} was killed by {name}{hint}; memory limit {memory_mb} MB"
    if "MemoryError" in log or _is_memory_failure(log):
        return f"{what} exceeded its memory limit of {memory_mb} MB"
    last = plain_reason(log, last=True) or "no output"
    return f"{what} exited with code {returncode}: {last}"


def limit_memory(memory_mb: int) -> None:
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class ReplyTimeout(Exception):
    """No whole reply line by the deadline."""


class ReplyClosed(Exception):
    """The worker closed its end (it exited) before a whole line."""


class ReplyTooLong(Exception):
    """A reply line longer than the reader allows: a broken worker."""


class LineReader:
    """Reply lines from a worker's stdout, each waited for with a deadline (select + os.read,
    so a hung worker never blocks the caller past it)."""

    def __init__(self, stream: IO[bytes], *, max_line: int) -> None:
        self._stream = stream
        self._max_line = max_line
        self._buffer = b""

    def line(self, deadline: float) -> bytes:
        """The next line (`deadline` is on `time.monotonic`)."""
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReplyTimeout
            ready, _, _ = select.select([self._stream], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._stream.fileno(), 65536)
            if not chunk:
                raise ReplyClosed
            self._buffer += chunk
            if len(self._buffer) > self._max_line:
                raise ReplyTooLong
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line
