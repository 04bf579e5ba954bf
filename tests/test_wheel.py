"""The package works when installed from its wheel, outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
from datetime import UTC, datetime
from pathlib import Path
import bot, evaluators, report_templates
from bot.store.db import open_store
from evaluators.render import render_html, render_pr_comment
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


def test_the_wheel_ships_templates_and_migrations_and_they_work(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
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
        cwd=tmp_path,
    )
    wheel = next(dist.glob("shipyard-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "report_templates/pr_comment.md.j2" in names
    assert "report_templates/report.html.j2" in names
    assert "bot/migrations/versions/0001_initial_schema.py" in names
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
