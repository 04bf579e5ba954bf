"""The registration gate's artifact audit runs in a process of its own, and fails closed.

The verdicts are the in-process classifier's, byte for byte; an audit that runs out of memory,
out of time or whose process is killed gives "not safe", the gate fails the candidate with a
plain reason, and the next audit starts a fresh process. The process sees none of the bot's
secrets.
"""

from __future__ import annotations

import os
import pickle
import zipfile
import zlib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import psutil
import pytest

from bot.base.waiting import wait_until
from bot.promotion.registration_gate import Conclusion, evaluate_candidate
from evaluators.artifacts.audit_process import ArtifactAuditor
from evaluators.artifacts.loading import classify_artifact_bytes

ROOT = Path(__file__).resolve().parents[1]
CHURN = ROOT / "fixtures/registry/{}/models/churn"


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/shipyard-audit-pwned",))


def _weights(variant: str) -> bytes:
    return next((Path(str(CHURN).format(variant)) / "weights").iterdir()).read_bytes()


def _zipped_pickle() -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(_Exploit()))
    return out.getvalue()


ARTIFACTS = {
    "the production ONNX model": lambda: _weights("production"),
    "the skops model": lambda: _weights("candidate_skops"),
    "a pickle": lambda: pickle.dumps(_Exploit()),
    "a zlib joblib file": lambda: zlib.compress(pickle.dumps(_Exploit())),
    "a zip holding a pickle": _zipped_pickle,
    "random bytes": lambda: bytes(range(7, 200)),
    "a protobuf that is not ONNX": lambda: b"\x08\x07",
}


@pytest.fixture(scope="module")
def auditor() -> Iterator[ArtifactAuditor]:
    audit = ArtifactAuditor()
    yield audit
    audit.close()


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("make", ARTIFACTS.values(), ids=list(ARTIFACTS))
def test_the_audit_process_gives_the_in_process_verdict(auditor: ArtifactAuditor, make) -> None:  # type: ignore[no-untyped-def]
    data = make()
    assert auditor.classify(data, filename="model.onnx") == classify_artifact_bytes(
        data, filename="model.onnx"
    )
    assert not Path("/tmp/shipyard-audit-pwned").exists()


def _candidate(weights: bytes) -> dict[str, bytes]:
    root = Path(str(CHURN).format("candidate_better"))
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    (name,) = [path for path in files if path.startswith("weights/")]
    return {**files, name: weights}


def _gate(auditor: ArtifactAuditor, weights: bytes) -> tuple[Conclusion, str]:
    result = evaluate_candidate(
        model="churn",
        files=_candidate(weights),
        lfs_paths=set(),
        file_errors={},
        classify=auditor.classify,
    )
    return result.conclusion, result.summary()


def test_an_audit_over_its_memory_limit_fails_the_candidate_and_the_next_audit_recovers() -> None:
    onnx = _weights("candidate_better")
    tight = ArtifactAuditor(memory_mb=64)  # too little to import onnx
    try:
        conclusion, summary = _gate(tight, onnx)
        assert conclusion is Conclusion.FAILURE
        assert "could not be inspected (the audit process exceeded its memory limit of 64 MB)" in (
            summary
        )
        assert "Traceback" not in summary and "/tmp" not in summary
        tight.memory_mb = 4096
        assert _gate(tight, onnx)[0] is Conclusion.SUCCESS
    finally:
        tight.close()


def test_an_audit_that_takes_too_long_fails_closed_and_is_killed() -> None:
    onnx = _weights("candidate_better")
    slow = ArtifactAuditor(timeout_s=0.001)  # the process cannot even start in time
    try:
        conclusion, summary = _gate(slow, onnx)
        assert conclusion is Conclusion.FAILURE
        assert "could not be inspected (the audit took longer than 0.001 s)" in summary
        assert slow.pid is None  # killed, not left behind
        slow.timeout_s = 60
        assert _gate(slow, onnx)[0] is Conclusion.SUCCESS
    finally:
        slow.close()


def test_a_killed_audit_process_is_started_again(auditor: ArtifactAuditor) -> None:
    onnx = _weights("candidate_better")
    assert auditor.classify(onnx, filename="model.onnx").safe
    pid = auditor.pid
    assert pid is not None
    psutil.Process(pid).kill()
    wait_until(lambda: auditor.pid is None, timeout_s=10, what="the audit process to die")
    assert auditor.classify(onnx, filename="model.onnx").safe
    assert auditor.pid not in (None, pid)


def test_an_audit_process_that_dies_while_idle_costs_the_next_artifact_nothing(
    auditor: ArtifactAuditor,
) -> None:
    # Killed with no request in flight (as when a library it imports while idle brings it
    # down), and asked at once: the request finds it dead or dying, and a fresh one answers.
    onnx = _weights("candidate_better")
    for _ in range(3):
        assert auditor.classify(onnx, filename="model.onnx").safe
        pid = auditor.pid
        assert pid is not None
        psutil.Process(pid).kill()
        assert auditor.classify(onnx, filename="model.onnx").safe
        assert auditor.pid != pid


def test_the_audit_process_sees_none_of_the_bots_secrets(
    auditor: ArtifactAuditor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_GITHUB_PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY----- secret")
    auditor.close()  # the next audit starts a process with this environment
    assert auditor.classify(_weights("production"), filename="model.onnx").safe
    assert auditor.pid is not None
    environ = psutil.Process(auditor.pid).environ()
    assert not any("SHIPYARD" in key or "secret" in value for key, value in environ.items())


def test_the_audit_process_ends_with_its_handle(auditor: ArtifactAuditor) -> None:
    assert auditor.classify(b"\x08\x07", filename="model.onnx").detected == "unknown"
    pid = auditor.pid
    assert pid is not None and _running(pid)
    auditor.close()
    assert auditor.pid is None and not _running(pid)
