"""How Shipyard's model worker processes are started, limited and explained (stdlib only, so a
caller can start one before importing anything heavy)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME", "SYSTEMROOT")
_LOG_TAIL_CHARS = 2000


def _worker_env(threads: int) -> dict[str, str]:
    """A minimal environment: the worker gets no secrets, and one thread per library."""
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    existing = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_PACKAGE_ROOT) + (os.pathsep + existing if existing else "")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def _log_tail(path: Path) -> str:
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


def _describe_exit(returncode: int, memory_mb: int, log: str) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (possibly over the memory limit)" if name in ("SIGKILL", "SIGSEGV") else ""
        return f"inference worker was killed by {name}{hint}; memory limit {memory_mb} MB"
    if "MemoryError" in log or _is_memory_failure(log):
        return f"inference worker exceeded its memory limit of {memory_mb} MB"
    last = log.splitlines()[-1] if log else "no output"
    return f"inference worker exited with code {returncode}: {last}"


def _limit_memory(memory_mb: int) -> None:
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
