"""The package works when installed from its wheel, outside the checkout."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
from datetime import UTC, datetime
from pathlib import Path
import bot, evaluators, report_templates
from bot.store.db import open_store
from evaluators.rendering.render import render_html, render_pr_comment
from evaluators.report import EvaluationReport, RunStatus
assert "site" in report_templates.__file__, report_templates.__file__
report = EvaluationReport(model="churn", task="binary_classification", status=RunStatus.ERROR,
                          error="benchmark missing", created_at=datetime.now(UTC),
                          primary_metric="roc_auc")
assert "churn" in render_pr_comment(report)
assert "<html" in render_html(report).lower()
store = open_store("sqlite:///" + str(Path("wheel.db").resolve()))
assert store.reachable()
print("ok")
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        cwd=dist,
    )
    return next(dist.glob("shipyard-*.whl"))


def test_the_wheel_ships_templates_and_migrations_and_they_work(
    tmp_path: Path, wheel: Path
) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "report_templates/pr_comment.md.j2" in names
    assert "report_templates/report.html.j2" in names
    assert "bot/store/migrations/versions/0001_initial_schema.py" in names
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        cwd=tmp_path,
    )
    run = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


def test_shipyard_demo_runs_from_an_installed_wheel_in_any_directory(
    tmp_path: Path, wheel: Path
) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "bot/demo_fixtures/registry/shipyard.yml" in names
    assert "bot/demo_fixtures/benchmark/churn_benchmark.parquet" in names
    assert "bot/demo_fixtures/github/openapi-subset.json" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin/python"
    # The dependencies come from this interpreter's site-packages (fast, offline); Shipyard
    # itself only from the wheel: the checkout is on no path the demo sees.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # Without the checkout on PYTHONPATH: its shipyard.egg-info would pass for an installation.
    hidden = {"PYTHONPATH", "SHIPYARD_SANDBOX_FIXTURES"}
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [str(venv / "bin/shipyard"), "demo"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=900,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert str(ROOT) not in run.stdout + run.stderr
    assert "PR #2 first evaluation, against the production model: Needs review" in run.stdout
    assert "PR #2 evaluated again, against PR #1's model now in production" in run.stdout
    assert "PR #3 opened by ml-platform" in run.stdout  # as PR #1 merges, beside PR #2's re-run
    # The last act: PR #1 promoted on the production gateway, PR #3 rolled back and on-call
    # paged, printed as on-call sees it.
    assert "canary promoted: promoting at 100%" in run.stdout
    assert "canary rolled back at 25%: p50" in run.stdout
    assert "PagerDuty incident" in run.stdout and "Rolled back churn pr3-" in run.stdout
    assert "Revert PR #4: Revert churn to pr1-" in run.stdout
    assert (
        "✅ PR #1 merged by the bot and promoted in production: True; PR #2 blocked and not "
        "merged: True; PR #3 rolled back in production and on-call paged once: True"
    ) in run.stdout
    for number in (1, 2):
        assert "<html" in (elsewhere / f"shipyard-demo/report-pr{number}.html").read_text()
