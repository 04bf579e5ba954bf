"""One warm worker process per evaluation: loads the models once, then scores and times them.

`python -m evaluators.artifacts.model_worker JOB_DIR` runs with RLIMIT_AS and minimal
environment like the one-shot workers in `inference.py`; the caller bounds every wait with the
policy's timeout and kills the process group when it passes. The worker verifies and loads each
artifact as soon as it starts (so its imports and model loading overlap the caller's own work),
then answers commands from stdin: score a feature matrix, measure latency (in a thread, so it
may overlap scoring). Commands and replies are JSON lines; arrays are .npy files in the job
directory, loaded with `allow_pickle=False`: nothing crossing the boundary is ever unpickled.

One process holds both models under one memory limit, as the latency worker always did: that
saves two Python starts and two imports of onnx (about 0.6 s of CPU each) per evaluation.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from evaluators.artifacts.worker_process import (
    LineReader,
    ReplyClosed,
    ReplyTimeout,
    ReplyTooLong,
    describe_exit,
    describe_failure,
    limit_memory,
    log_tail,
    worker_env,
)

# Only the standard library at import: the CLI starts the worker before its own slow imports.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from evaluators.artifacts.inference import InferenceResult, Runner
    from evaluators.artifacts.loading import ArtifactError
    from evaluators.artifacts.verdict_cache import VerdictCache
    from evaluators.candidate import ModelConfig
    from evaluators.policy import LatencyPolicy
    from evaluators.report import LatencySection

CANDIDATE = "candidate"
BASELINE = "baseline"
LATENCY_ROWS = 5_000  # latency is timed on the benchmark's first rows
_MAX_LINE = 1024 * 1024  # replies are small JSON; anything longer is a broken worker


class WorkerGone(RuntimeError):
    """The worker exited or was killed; the message says how (as the one-shot workers do)."""


class WorkerTimeout(RuntimeError):
    """A step did not finish within the policy's timeout; the worker was killed."""


@dataclass(frozen=True)
class Loaded:
    """A model the worker verified and loaded (its artifact's sha256), or why it could not."""

    sha256: str | None
    artifact_error: ArtifactError | None = None
    failure: InferenceResult | None = None


class ModelWorker:
    """The caller's handle on one warm worker; `close()` (or `with`) always ends the process."""

    def __init__(
        self,
        *,
        timeout_s: float = 600.0,
        batch_size: int = 65536,
        verdict_cache: Path | None = None,
    ) -> None:
        """Start the process; it imports its libraries while the caller gets ready (`load`).

        With `verdict_cache` (the command line's, never the bot's), artifacts whose exact bytes
        passed verification before are not verified again (see verdict_cache.py).
        """
        self.roles: tuple[str, ...] = ()
        self.memory_mb = 0
        self.timeout_s = timeout_s
        self._batch_size = batch_size
        self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-worker-")
        self.job_dir = Path(self._tmp.name)
        self._log = (self.job_dir / "worker.log").open("wb")
        cache_arg = [str(verdict_cache)] if verdict_cache is not None else []
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "evaluators.artifacts.model_worker",
                str(self.job_dir),
                *cache_arg,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=worker_env(1),
            cwd=self.job_dir,
            start_new_session=True,  # so a timeout kills the whole process group
        )
        assert self._proc.stdout is not None
        self._reader = LineReader(self._proc.stdout, max_line=_MAX_LINE)
        self._replies: dict[tuple[str, str], dict[str, Any]] = {}
        self._loaded: dict[str, Loaded] = {}
        self._features: dict[str, Path] = {}
        self._files = itertools.count()
        self._predicting: set[str] = set()  # features files whose predict is in flight
        self._latency_command: dict[str, Any] | None = None

    def load(
        self, models: Mapping[str, tuple[Path, ModelConfig]], *, memory_mb: int, timeout_s: float
    ) -> None:
        """Set the memory limit, then verify and load each model (answered by `loaded`)."""
        self.roles = tuple(models)
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        job = {
            "op": "load",
            "memory_mb": memory_mb,
            "models": {
                role: {"model_dir": str(d.resolve()), "config": c.model_dump(mode="json")}
                for role, (d, c) in models.items()
            },
        }
        with contextlib.suppress(WorkerGone):  # each `loaded` then says how the worker ended
            self._send(job)

    def __enter__(self) -> ModelWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- talking to the process -----------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        stdin: IO[bytes] | None = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._gone() from None

    def _gone(self) -> WorkerGone:
        try:
            code = self._proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self._proc.wait()
        self._log.flush()
        return WorkerGone(
            describe_exit(code, self.memory_mb, log_tail(self.job_dir / "worker.log"))
        )

    def _kill(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()

    def _wait(self, op: str, role: str, timeout_s: float) -> dict[str, Any]:
        """The reply to (op, role); replies to other commands are kept for their callers.

        A predict's reply is keyed by its features file instead of its role, so an early
        predict on features that turned out different is never taken for the later one."""
        deadline = time.monotonic() + timeout_s
        while (op, role) not in self._replies:
            try:
                line = self._reader.line(deadline)
            except ReplyTimeout:
                self._kill()
                raise WorkerTimeout(op) from None
            except ReplyClosed:
                raise self._gone() from None
            except ReplyTooLong:
                self._kill()
                raise WorkerGone("inference worker sent an oversized reply") from None
            try:
                reply = json.loads(line)
                key = (str(reply["op"]), str(reply.get("features") or reply.get("role", "")))
            except (ValueError, TypeError, KeyError):
                self._kill()
                raise WorkerGone("inference worker sent an unreadable reply") from None
            self._replies[key] = reply
        return self._replies.pop((op, role))

    # -- what the evaluation asks ---------------------------------------------------------

    def loaded(self, role: str) -> Loaded:
        """Wait until the worker verified and loaded `role`'s model."""
        from evaluators.artifacts.inference import InferenceResult
        from evaluators.artifacts.loading import UnsafeArtifactError, UnsupportedFormatError
        from evaluators.report import RunStatus

        if role in self._loaded:
            return self._loaded[role]

        def failed(status: RunStatus, message: str) -> Loaded:
            return Loaded(None, failure=InferenceResult(status, None, message, 0.0))

        try:
            reply = self._wait("load", role, self.timeout_s)
        except WorkerTimeout:
            result = failed(
                RunStatus.TIMED_OUT, f"inference did not finish within {self.timeout_s:g} s"
            )
        except WorkerGone as exc:
            result = failed(RunStatus.ERROR, str(exc))
        else:
            if reply["status"] == "ok":
                result = Loaded(str(reply["sha256"]))
            elif reply["status"] == "artifact":
                kind = UnsafeArtifactError if reply["unsafe"] else UnsupportedFormatError
                result = Loaded(None, artifact_error=kind(str(reply["message"])))
            else:
                result = failed(RunStatus.ERROR, str(reply["message"]))
        self._loaded[role] = result
        return result

    def send_features(self, role: str, x: NDArray[np.float32]) -> None:
        """Hand the worker `role`'s feature matrix (a .npy file it maps read-only).

        The same matrix again, while a predict begun on the last one is in flight, is a
        no-op: features sent early are not written, nor scored, twice. Other sends (a new
        partition, say) are not compared at all."""
        import numpy as np

        x = np.ascontiguousarray(x)
        sent = self._features.get(role)
        if sent is not None and sent.name in self._predicting:  # against the file, not a copy
            previous = np.load(sent, mmap_mode="r", allow_pickle=False)
            same_kind = previous.dtype == x.dtype and previous.shape == x.shape
            if same_kind and np.array_equal(previous, x, equal_nan=x.dtype.kind == "f"):
                return
        path = self.job_dir / f"{role}.features.{next(self._files)}.npy"
        np.save(path, x, allow_pickle=False)
        self._features[role] = path

    def start_predict(self, role: str) -> None:
        """Begin scoring `role` on the matrix sent last; `predict` then waits for it."""
        features = self._features[role].name
        if features not in self._predicting:
            self._send(
                {
                    "op": "predict",
                    "role": role,
                    "features": features,
                    "batch_size": self._batch_size,
                }
            )
            self._predicting.add(features)

    def predict(self, role: str) -> InferenceResult:
        """`role`'s outputs on the matrix sent with `send_features`."""
        import numpy as np

        from evaluators.artifacts.inference import InferenceResult
        from evaluators.report import RunStatus

        started = time.perf_counter()

        def result(status: RunStatus, message: str, proba: Any = None) -> InferenceResult:
            return InferenceResult(status, proba, message, time.perf_counter() - started)

        features = self._features[role].name
        try:
            self.start_predict(role)
            reply = self._wait("predict", features, self.timeout_s)
            self._predicting.discard(features)
        except WorkerTimeout:
            return result(
                RunStatus.TIMED_OUT, f"inference did not finish within {self.timeout_s:g} s"
            )
        except WorkerGone as exc:
            return result(RunStatus.ERROR, str(exc))
        if reply["status"] != "ok":
            return result(RunStatus.ERROR, str(reply["message"]))
        proba = np.load(self.job_dir / _output_name(features), allow_pickle=False)
        return result(RunStatus.COMPLETED, "ok", proba.astype(np.float64, copy=False))

    def start_latency(self, *, rows: int, policy: LatencyPolicy, confidence: float) -> None:
        """Begin measuring latency on the first `rows` rows of both feature matrices (once:
        the same measurement asked for again is the one already running)."""
        command = {
            "op": "latency",
            "rows": rows,
            "features": {r: self._features[r].name for r in (CANDIDATE, BASELINE)},
            "policy": policy.model_dump(mode="json"),
            "confidence": confidence,
        }
        if command != self._latency_command:
            self._send(command)
            self._latency_command = command

    def latency(self) -> LatencySection | None:
        """The measurement begun by `start_latency`; None when it ran out of time.

        Raises WorkerGone when the worker died or the measurement failed.
        """
        from evaluators.report import LatencySection

        try:
            reply = self._wait("latency", "", self.timeout_s)
        except WorkerTimeout:
            return None
        if reply["status"] != "ok":
            raise WorkerGone(str(reply["message"]))
        return LatencySection.model_validate_json((self.job_dir / "latency.json").read_text())

    def close(self) -> None:
        """End the process (it holds nothing worth saving) and remove the job directory."""
        self._kill()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        self._log.close()
        self._tmp.cleanup()


def models_of(
    candidate_dir: Path, baseline_dir: Path | None
) -> dict[str, tuple[Path, ModelConfig]] | None:
    """The models of an evaluation by role; None when a directory is not usable (the
    evaluation then reports why, with its own message)."""
    from evaluators.candidate import parse_model_config

    models: dict[str, tuple[Path, ModelConfig]] = {}
    for role, directory in ((CANDIDATE, candidate_dir), (BASELINE, baseline_dir)):
        if directory is None:
            continue
        try:
            config = parse_model_config(
                (directory / "config.yaml").read_text(), source=str(directory / "config.yaml")
            )
        except Exception:
            return None
        if not (directory / config.weights).is_file():
            return None
        models[role] = (directory, config)
    return models


# -- the worker process -------------------------------------------------------------------


def _output_name(features: str) -> str:
    return features.removesuffix(".npy") + ".output.npy"


def _error(exc: BaseException, memory_mb: int) -> dict[str, Any]:
    return {"status": "error", "message": describe_failure(exc, memory_mb)}


def _load(
    spec: dict[str, Any], memory_mb: int, cache: VerdictCache | None
) -> tuple[Runner | None, dict[str, Any]]:
    from evaluators.artifacts.inference import open_runner
    from evaluators.artifacts.loading import ArtifactError, UnsafeArtifactError
    from evaluators.candidate import ModelConfig

    model_dir = Path(spec["model_dir"])
    try:
        config = ModelConfig.model_validate(spec["config"])
        # Verifies the artifact first (or finds its exact bytes' pass in the cache).
        runner = open_runner(model_dir=model_dir, config=config, cache=cache)
        digest = hashlib.sha256((model_dir / config.weights).read_bytes()).hexdigest()
    except ArtifactError as exc:
        unsafe = isinstance(exc, UnsafeArtifactError)
        return None, {"status": "artifact", "unsafe": unsafe, "message": str(exc)}
    except Exception as exc:
        return None, _error(exc, memory_mb)
    return runner, {"status": "ok", "sha256": digest}


def _predict(
    command: dict[str, Any], runners: dict[str, Runner], job_dir: Path, memory_mb: int
) -> dict[str, Any]:
    import numpy as np

    from evaluators.artifacts.inference import predict_batched

    role = str(command["role"])
    features = Path(command["features"]).name
    try:
        x = np.load(job_dir / features, mmap_mode="r", allow_pickle=False)
        out = predict_batched(runners[role], x, batch_size=int(command["batch_size"]))
        path = job_dir / _output_name(features)
        np.save(path, np.asarray(out, dtype=np.float64), allow_pickle=False)
    except BaseException as exc:
        return _error(exc, memory_mb)
    return {"status": "ok"}


def _latency(
    command: dict[str, Any], runners: dict[str, Runner], job_dir: Path, memory_mb: int
) -> dict[str, Any]:
    import numpy as np

    from evaluators.artifacts.latency import measure_latency_on
    from evaluators.policy import LatencyPolicy

    try:
        rows = int(command["rows"])
        features = command["features"]
        matrices = tuple(
            np.ascontiguousarray(
                np.load(job_dir / Path(features[r]).name, mmap_mode="r", allow_pickle=False)[:rows]
            )
            for r in (CANDIDATE, BASELINE)
        )
        section = measure_latency_on(
            candidate=runners[CANDIDATE],
            baseline=runners[BASELINE],
            matrices=(matrices[0], matrices[1]),
            policy=LatencyPolicy.model_validate(command["policy"]),
            confidence=float(command["confidence"]),
        )
        (job_dir / "latency.json").write_text(section.model_dump_json())
    except BaseException as exc:
        return _error(exc, memory_mb)
    return {"status": "ok"}


def _preimport(*, verifier: bool) -> None:
    """Import the ONNX libraries while the caller still parses its inputs: onnx alone is about
    0.6 s of CPU (its ml_dtypes dependency registers hundreds of numpy loops). Our own imports,
    before any model is read; the memory limit is set before the first one is. With a verdict
    cache onnx is left out: a repeat run finds its artifacts there and never needs it (a miss
    imports it when verifying)."""
    if verifier:
        import onnx  # noqa: F401  # used by the artifact verification
    import onnxruntime  # noqa: F401


def main(argv: list[str]) -> int:
    """Worker entry point: load every model, then answer commands until `exit` or EOF."""
    job_dir = Path(argv[1])
    cache = None
    if len(argv) > 2:
        from evaluators.artifacts.verdict_cache import VerdictCache

        cache = VerdictCache(Path(argv[2]))
    # Replies get a private copy of stdout; anything a library prints (to fd 1, from Python or
    # C) goes to the log on stderr instead of corrupting the reply stream.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _preimport(verifier=cache is None)
    first = sys.stdin.readline()
    if not first:
        return 0  # the caller did not need the models after all
    job = json.loads(first)
    memory_mb = int(job["memory_mb"])
    limit_memory(memory_mb)
    lock = threading.Lock()

    def reply(message: dict[str, Any]) -> None:
        with lock:
            replies.write(json.dumps(message) + "\n")
            replies.flush()

    runners: dict[str, Runner] = {}
    for role, spec in job["models"].items():
        runner, outcome = _load(spec, memory_mb, cache)
        if runner is not None:
            runners[role] = runner
        reply({"op": "load", "role": role, **outcome})
    threads: list[threading.Thread] = []
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "predict":
            reply(
                {
                    "op": "predict",
                    "role": command["role"],
                    "features": Path(command["features"]).name,
                    **_predict(command, runners, job_dir, memory_mb),
                }
            )
        elif command["op"] == "latency":

            def measure(command: dict[str, Any] = command) -> None:
                reply(
                    {"op": "latency", "role": "", **_latency(command, runners, job_dir, memory_mb)}
                )

            thread = threading.Thread(target=measure, daemon=True)
            thread.start()
            threads.append(thread)
        else:
            break
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))


__all__ = [
    "BASELINE",
    "CANDIDATE",
    "Loaded",
    "ModelWorker",
    "WorkerGone",
    "WorkerTimeout",
    "models_of",
]
