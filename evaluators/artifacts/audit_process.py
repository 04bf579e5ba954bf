"""The registration gate's artifact audit, in a process of its own.

Deciding whether a PR's weights are safe means parsing them with onnx and skops: untrusted
bytes in third-party parsers. Done in the bot, a parser bug or a decompression bomb would hit
the process that holds the GitHub key, and importing skops (1.6 s holding the GIL, once per
process) stalled every other PR the bot was serving. So the bot hands the bytes to one
long-lived audit process: no secrets in its environment, an address-space limit, a timeout per
artifact, killed and started again after any failure. Whatever goes wrong, the verdict is "not
safe" (fail closed).

The process is shared by everything in the bot's process and started on the first audit. It
answers that audit as soon as its libraries are imported, then imports the other format's
libraries while it waits, so a skops PR later on does not wait for skops. A compromised audit
process could only say "safe" wrongly; the evaluation's fresh worker and the gateway verify the
same bytes again before loading them, in processes of their own.

Protocol: one JSON line per request on stdin (`{"path", "filename"}`: the bytes are in a file
of the parent's temporary directory), one JSON line per verdict on stdout.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from evaluators.artifacts.worker_process import (
    LineReader,
    ReplyClosed,
    ReplyTimeout,
    ReplyTooLong,
    describe_exit,
    limit_memory,
    log_tail,
    worker_env,
)

if TYPE_CHECKING:
    from evaluators.artifacts.loading import ArtifactVerdict
    from evaluators.candidate import ArtifactFormat

# Room for the largest artifact the gate accepts (2 GiB, bounded.MAX_MODEL_BYTES) parsed once.
AUDIT_MEMORY_MB = 8192
AUDIT_TIMEOUT_S = 120.0
_MAX_REPLY = 64 * 1024
# Imported while idle, in this order: what most registries use first.
_WARM = ("onnx", "skops.io")


class _AuditFailed(RuntimeError):
    """The audit process did not give a verdict; the message says why, for the PR."""


class _AuditGone(_AuditFailed):
    """The audit process exited (or was killed) before it answered."""


class ArtifactAuditor:
    """The bot's handle on its audit process; thread-safe (one audit at a time)."""

    def __init__(
        self, *, memory_mb: int = AUDIT_MEMORY_MB, timeout_s: float = AUDIT_TIMEOUT_S
    ) -> None:
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None
        self._reader: LineReader | None = None
        self._count = 0

    def classify(self, data: bytes, *, filename: str) -> ArtifactVerdict:
        """`loading.classify_artifact_bytes`, run in the audit process."""
        from evaluators.artifacts.loading import ArtifactVerdict

        with self._lock:
            try:
                try:
                    reply = self._audit(data, filename)
                except _AuditGone:
                    # It may have died while idle (importing a library), before this request:
                    # once more, on a fresh process, which answers before it imports anything.
                    self._stop()
                    reply = self._audit(data, filename)
                return ArtifactVerdict(
                    safe=bool(reply["safe"]),
                    format=_format(reply["format"]),
                    detected=str(reply["detected"]),
                    reason=str(reply["reason"]),
                    unsafe=bool(reply["unsafe"]),
                )
            except (_AuditFailed, KeyError, TypeError, ValueError) as exc:
                self._stop()
                why = str(exc) if isinstance(exc, _AuditFailed) else "an unreadable verdict"
                return ArtifactVerdict(
                    False, None, "unknown", f"{filename}: could not be inspected ({why})"
                )

    @property
    def pid(self) -> int | None:
        """The audit process's id while one runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- the process ----------------------------------------------------------------------

    def _start(self) -> subprocess.Popen[bytes]:
        self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-audit-")
        job_dir = Path(self._tmp.name)
        self._log = (job_dir / "audit.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "evaluators.artifacts.audit_process", str(self.memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=worker_env(1),
            cwd=job_dir,
            start_new_session=True,  # so a timeout kills whatever it started too
        )
        assert proc.stdout is not None
        self._reader = LineReader(proc.stdout, max_line=_MAX_REPLY)
        return proc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    stream and stream.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _audit(self, data: bytes, filename: str) -> dict[str, Any]:
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            self._proc = self._start()
        proc = self._proc
        assert self._tmp is not None and proc.stdin is not None
        self._count += 1
        path = Path(self._tmp.name) / f"artifact-{self._count}"
        path.write_bytes(data)
        try:
            request = {"path": str(path), "filename": filename}
            try:
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
            except OSError:
                raise self._gone(proc) from None
            return self._reply(proc)
        finally:
            path.unlink(missing_ok=True)

    def _reply(self, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
        assert self._reader is not None
        try:
            line = self._reader.line(time.monotonic() + self.timeout_s)
        except ReplyTimeout:
            raise _AuditFailed(f"the audit took longer than {self.timeout_s:g} s") from None
        except ReplyClosed:
            raise self._gone(proc) from None
        except ReplyTooLong:
            raise _AuditFailed("the audit process sent an oversized reply") from None
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _gone(self, proc: subprocess.Popen[bytes]) -> _AuditFailed:
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return _AuditFailed("the audit process stopped answering")
        assert self._log is not None and self._tmp is not None
        self._log.flush()
        log = log_tail(Path(self._tmp.name) / "audit.log")
        return _AuditGone(describe_exit(code, self.memory_mb, log, what="the audit process"))


def _format(value: Any) -> ArtifactFormat | None:
    from evaluators.candidate import ArtifactFormat

    return None if value is None else ArtifactFormat(value)


_shared: dict[int, ArtifactAuditor] = {}
_shared_lock = threading.Lock()


def shared_auditor(memory_mb: int = AUDIT_MEMORY_MB) -> ArtifactAuditor:
    """The process's audit process handle for a memory limit: one per bot process (bots started
    in one process, as in tests, share it); its child exits with the process."""
    with _shared_lock:
        auditor = _shared.get(memory_mb)
        if auditor is None:
            auditor = _shared[memory_mb] = ArtifactAuditor(memory_mb=memory_mb)
            atexit.register(auditor.close)
        return auditor


# -- the child ----------------------------------------------------------------------------


def _warm_while_idle(stdin_fd: int, pending: list[str]) -> None:
    """Start the next library's import only while no request waits (one that arrives during
    an import waits for that import, at most a second or two, once per process)."""
    import importlib

    while pending and not select.select([stdin_fd], [], [], 0)[0]:
        with contextlib.suppress(Exception):  # a missing extra is the request's problem
            importlib.import_module(pending[0])
        pending.pop(0)


def main(argv: list[str]) -> int:
    limit_memory(int(argv[1]))
    os.nice(10)  # the bot's own threads and the evaluations come first
    # Verdicts get a private copy of stdout; whatever a library prints goes to the log.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from evaluators.artifacts.loading import classify_artifact_bytes

    pending = list(_WARM)
    stdin_fd = sys.stdin.fileno()
    while True:
        _warm_while_idle(stdin_fd, pending)
        line = sys.stdin.readline()
        if not line:
            return 0  # the bot closed its end
        request = json.loads(line)
        data = Path(request["path"]).read_bytes()
        verdict = classify_artifact_bytes(data, filename=str(request["filename"]))
        reply = {
            "safe": verdict.safe,
            "format": verdict.format.value if verdict.format is not None else None,
            "detected": verdict.detected,
            "reason": verdict.reason,
            "unsafe": verdict.unsafe,
        }
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv))


__all__ = ["AUDIT_MEMORY_MB", "AUDIT_TIMEOUT_S", "ArtifactAuditor", "shared_auditor"]
