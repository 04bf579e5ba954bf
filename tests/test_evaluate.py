"""One evaluation end to end on the fixture models, as `shipyard evaluate` and the bot run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evaluators.evaluate import run_evaluation
from evaluators.policy import Policy, parse_policy
from evaluators.report import Decision, RunStatus

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "fixtures/registry"


def _policy(**changes: object) -> Policy:
    data = yaml.safe_load((REGISTRY / "shipyard.yml").read_text())
    data["latency"]["enabled"] = False  # its own tests; noise here
    data.update(changes)
    return parse_policy(yaml.safe_dump(data))


def _run(variant: str, policy: Policy, cache: Path, *, baseline: bool = True):  # type: ignore[no-untyped-def]
    return run_evaluation(
        candidate_dir=REGISTRY / variant / "models/churn",
        baseline_dir=REGISTRY / "production/models/churn" if baseline else None,
        policy=policy,
        benchmark_base_dir=REGISTRY,
        cache_dir=cache,
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("predictions")


@pytest.mark.parametrize(
    "variant, decision, reason",
    [
        ("candidate_better", Decision.AUTO_PROMOTE_ELIGIBLE, "ROC AUC improved"),
        (
            "candidate_segment_regression",
            Decision.NEEDS_REVIEW,
            "Segment entity_type=public_sector regressed",
        ),
        ("candidate_miscalibrated", Decision.FAIL, "Calibration worsened"),
        ("candidate_skops", Decision.AUTO_PROMOTE_ELIGIBLE, "ROC AUC improved"),
    ],
    ids=[
        "a model better everywhere is eligible for auto-promotion",
        "a model worse on one segment needs a person",
        "a miscalibrated model fails",
        "a skops model is evaluated like an onnx one",
    ],
)
def test_fixture_candidates_get_the_verdict_they_were_built_for(
    cache: Path, variant: str, decision: Decision, reason: str
) -> None:
    report = _run(variant, _policy(), cache)
    assert report.status is RunStatus.COMPLETED, report.error
    assert report.verdict is not None
    assert report.verdict.decision is decision, report.verdict.reasons
    assert any(r.startswith(reason) for r in report.verdict.reasons)
    assert report.fingerprint is not None and len(report.fingerprint.digest) == 64


def test_the_report_names_the_candidate_and_reproduces_its_brier_claim(cache: Path) -> None:
    report = _run("candidate_better", _policy(), cache)
    brier = next(c for c in report.claimed if c.metric == "brier")
    assert report.calibration is not None
    assert brier.reproduced == pytest.approx(report.calibration.candidate.brier)
    assert report.identity is not None
    assert report.identity.changelog_excerpt and report.identity.changelog_excerpt.startswith("## ")
    assert report.identity.training_snapshot == "snapshot:churn-train-2026-10"


def test_the_inflated_claim_is_flagged(cache: Path) -> None:
    report = _run("candidate_miscalibrated", _policy(), cache)
    flagged = [c for c in report.claimed if c.flagged]
    assert [c.metric for c in flagged] == ["roc_auc"]


def test_a_wrong_benchmark_pin_is_an_error_naming_the_pin_not_the_files_hash(cache: Path) -> None:
    policy = _policy()
    assert policy.benchmark is not None
    wrong = policy.model_copy(
        update={"benchmark": policy.benchmark.model_copy(update={"sha256": "0" * 64})}
    )
    report = _run("candidate_better", wrong, cache)
    assert report.status is RunStatus.ERROR
    assert report.error is not None and "0" * 64 in report.error
    assert policy.benchmark.sha256 not in report.error  # the file's own hash is never echoed
    assert report.verdict is not None and report.verdict.decision is Decision.FAIL


def test_a_new_model_is_compared_with_a_class_prior_baseline(cache: Path) -> None:
    report = _run("candidate_better", _policy(), cache, baseline=False)
    auc = next(m for m in report.overall if m.metric == "roc_auc")
    assert auc.baseline == pytest.approx(0.5)
    assert report.fingerprint is not None and report.fingerprint.baseline_tree_sha256 is None


@pytest.mark.parametrize(
    "variant, status",
    [("candidate_better", 0), ("candidate_miscalibrated", 1)],
    ids=["eligible exits 0", "a fail exits 1"],
)
def test_the_command_line_exits_non_zero_on_a_fail(
    tmp_path: Path, variant: str, status: int
) -> None:
    policy = tmp_path / ".shipyard.yml"
    data = yaml.safe_load((REGISTRY / "shipyard.yml").read_text())
    data["latency"]["enabled"] = False
    data["benchmark"]["uri"] = str(ROOT / "fixtures/benchmark/churn_benchmark.parquet")
    policy.write_text(yaml.safe_dump(data))
    html, js = tmp_path / "report.html", tmp_path / "report.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli.main",
            "evaluate",
            str(REGISTRY / variant / "models/churn"),
            "--baseline",
            str(REGISTRY / "production/models/churn"),
            "--policy",
            str(policy),
            "--html",
            str(html),
            "--json",
            str(js),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == status, run.stderr[-2000:]
    assert "<svg" in html.read_text() or "<img" in html.read_text()
    assert '"verdict"' in js.read_text()
