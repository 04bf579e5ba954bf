"""Gate 1 end to end: a registry PR in the GitHub sandbox gets `Shipyard / candidate` checks."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from bot.cli.registry_world import REGISTRY, RegistryWorld
from tests.bot_harness import wait_until

CHECK = "Shipyard / candidate (churn)"


def _completed(world: RegistryWorld, number: int, name: str = CHECK):  # type: ignore[no-untyped-def]
    return wait_until(
        lambda: (run := world.check_run(number, name)) and run.status == "completed" and run,
        what=f"{name} to complete",
    )


@pytest.fixture
def registry(world: RegistryWorld) -> RegistryWorld:
    world.create_registry()
    world.start_bot(evaluation_workers=0)
    return world


def test_a_well_formed_candidate_passes_the_gate_on_its_head_sha(registry: RegistryWorld) -> None:
    number = registry.open_candidate_pr("candidate_better")
    run = _completed(registry, number)
    assert run.conclusion == "success"
    assert run.head_sha == registry.head_sha(number)
    assert "registered as a candidate" in run.output["title"]
    assert "weights/model.onnx`: onnx" in run.output["summary"]


def test_weights_in_git_lfs_are_fetched_and_their_sha256_verified(registry: RegistryWorld) -> None:
    number = registry.open_candidate_pr("candidate_better", lfs=True)
    run = _completed(registry, number)
    assert run.conclusion == "success"
    assert "Git LFS, sha256 verified" in run.output["summary"]


def test_an_lfs_object_that_does_not_match_its_pointer_fails(registry: RegistryWorld) -> None:
    files = registry.candidate_files("candidate_better")
    weights = "models/churn/weights/model.onnx"
    real = files[weights]
    assert real is not None
    files[weights] = registry.sandbox.store_lfs_object(REGISTRY, real, served=real[:-1] + b"\0")
    number = registry.open_candidate_pr("candidate_better", files=files)
    run = _completed(registry, number)
    assert run.conclusion == "failure"
    assert "does not match its sha256" in run.output["summary"]


class _Exploit:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", ["model.pkl", "model.onnx"], ids=["named pkl", "renamed onnx"])
def test_a_pickled_model_fails_the_gate_and_is_never_deserialised(
    registry: RegistryWorld, tmp_path: Path, name: str
) -> None:
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = marker  # type: ignore[attr-defined]
    files = registry.candidate_files("candidate_better")
    files["models/churn/weights/model.onnx"] = None
    files[f"models/churn/weights/{name}"] = pickle.dumps(exploit)
    number = registry.open_candidate_pr("candidate_better", files=files)
    run = _completed(registry, number)
    assert run.conclusion == "failure"
    assert "pickle" in run.output["summary"].lower()
    assert not marker.exists()


def test_missing_files_and_a_bad_config_are_listed_with_line_numbers(
    registry: RegistryWorld,
) -> None:
    files = registry.candidate_files("candidate_better")
    files["models/churn/CHANGELOG.md"] = None
    files["models/churn/config.yaml"] = (
        b"name: churn\ntask: binary_classification\nformat: onnx\n"
        b"weights: weights/model.onnx\nfeatures: []\nthreshold: 1.5\n"
    )
    number = registry.open_candidate_pr("candidate_better", files=files)
    run = _completed(registry, number)
    summary = run.output["summary"]
    assert run.conclusion == "failure"
    assert "`CHANGELOG.md` is missing" in summary
    assert "config.yaml: line 5: features" in summary
    assert "config.yaml: line 6: threshold" in summary


def test_a_pr_touching_two_models_gets_one_candidate_check_per_model(
    registry: RegistryWorld,
) -> None:
    files = registry.candidate_files("candidate_better")
    for rel, data in list(files.items()):
        files[rel.replace("models/churn/", "models/fraud/")] = data
    files["models/fraud/config.yaml"] = (files["models/churn/config.yaml"] or b"").replace(
        b"name: churn", b"name: fraud"
    )
    number = registry.open_candidate_pr("candidate_better", files=files)
    churn = _completed(registry, number)
    fraud = _completed(registry, number, "Shipyard / candidate (fraud)")
    assert (churn.conclusion, fraud.conclusion) == ("success", "success")


def test_an_invalid_policy_on_the_default_branch_is_a_failing_check_not_a_crash(
    world: RegistryWorld,
) -> None:
    world.create_registry(policy_text="models_root: models\nreview:\n  window_hours: -3\n")
    world.start_bot(evaluation_workers=0)
    files = world.candidate_files("candidate_better")
    files[".shipyard.yml"] = b"models_root: models\n"  # the PR cannot fix its own gate
    number = world.open_candidate_pr("candidate_better", files=files)
    run = _completed(world, number, "Shipyard / candidate")
    assert run.conclusion == "failure"
    assert "line 3: review.window_hours" in run.output["summary"]


def test_a_delivery_acknowledged_before_a_crash_is_handled_after_restart(
    world: RegistryWorld,
) -> None:
    world.create_registry()
    world.start_bot(run_workers=False, evaluation_workers=0)  # acknowledges, handles nothing
    number = world.open_candidate_pr("candidate_better")
    delivery = world.sandbox.webhooks.wait_for(1)[-1]
    assert delivery.status_code == 202
    world.stop_bot()  # the "crash": the delivery is stored but was never handled
    assert world.check_run(number, CHECK) is None
    world.start_bot(evaluation_workers=0)
    assert _completed(world, number).conclusion == "success"


def test_a_redelivered_webhook_is_acknowledged_and_does_nothing_twice(
    registry: RegistryWorld,
) -> None:
    number = registry.open_candidate_pr("candidate_better")
    _completed(registry, number)
    first = registry.sandbox.webhooks.deliveries[0]
    assert registry.sandbox.redeliver(first.id) == 202
    runs = registry.sandbox.check_runs_for(REGISTRY, registry.head_sha(number))
    assert [r.name for r in runs].count(CHECK) == 1


def test_a_pr_that_touches_no_model_needs_an_approve_and_gets_no_comment(
    registry: RegistryWorld,
) -> None:
    # Was: success without anyone looking. Only model directories are gated by evidence;
    # anything else needs an authorised /approve (tests/test_gate_security_e2e.py).
    registry.sandbox.commit(REGISTRY, "docs", {"README.md": b"# Registry\n\nHow to add a model.\n"})
    number = registry.sandbox.open_pull(REGISTRY, "docs", "main", "Docs", "data-scientist")
    run = _completed(registry, number, "Shipyard / promotion-gate")
    assert run.conclusion == "action_required"
    assert '"README.md"' in run.output["summary"]
    assert registry.sandbox.comments_on(REGISTRY, number) == []


def test_an_artifact_the_audit_process_cannot_parse_within_its_memory_fails_the_check(
    world: RegistryWorld,
) -> None:
    # The operator gave the audit process 256 MB: enough for onnx, too little to import skops,
    # so the skops model cannot be inspected. The candidate check fails closed and says why.
    world.create_registry()
    world.start_bot(evaluation_workers=0, artifact_audit_memory_mb=256)
    skops = _completed(world, world.open_candidate_pr("candidate_skops"))
    assert skops.conclusion == "failure"
    summary = skops.output["summary"]
    assert "model.skops" in summary and "be inspected" in summary
    assert "Traceback" not in summary and "/tmp" not in summary
    onnx = _completed(world, world.open_candidate_pr("candidate_better"))
    assert onnx.conclusion == "success"  # the same audit process still judges what it can
