"""`shipyard evaluate` as a CI tool: a bad input is one clear message and exit 2, no traceback."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "fixtures/registry"
PRODUCTION = REGISTRY / "production/models/churn"
BETTER = REGISTRY / "candidate_better/models/churn"
SEGMENT = REGISTRY / "candidate_segment_regression/models/churn"


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line caches verification passes under XDG_CACHE_HOME: keep them here."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _policy(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((REGISTRY / "shipyard.yml").read_text())
    data["latency"]["enabled"] = False
    data["benchmark"]["uri"] = str(ROOT / "fixtures/benchmark/churn_benchmark.parquet")
    data.update(changes)
    path = tmp_path / "ci-policy.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["evaluate", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def _no_weights(tmp_path: Path) -> Path:
    model = tmp_path / "no-weights"
    shutil.copytree(BETTER, model)
    shutil.rmtree(model / "weights")
    return model


def _yaml_error(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yml"
    path.write_text("primary_metric: roc_auc\nbenchmark:\n  uri: x\n  sha256: [\nmetrics: []\n")
    return path


def _no_benchmark(tmp_path: Path) -> Path:
    path = tmp_path / "empty-policy.yml"
    path.write_text("primary_metric: roc_auc\n")
    return path


CASES = [
    (
        "a missing candidate directory says the directory does not exist",
        lambda t: [t / "nope", "--baseline", PRODUCTION, "--policy", _policy(t)],
        ["the candidate directory", "nope does not exist"],
    ),
    (
        "a missing baseline directory says the directory does not exist",
        lambda t: [BETTER, "--baseline", t / "gone", "--policy", _policy(t)],
        ["the baseline directory", "gone does not exist"],
    ),
    (
        "a missing policy file says the file does not exist",
        lambda t: [BETTER, "--baseline", PRODUCTION, "--policy", t / "absent.yml"],
        ["the policy file", "absent.yml does not exist"],
    ),
    (
        "a policy without a benchmark names the file given",
        lambda t: [BETTER, "--baseline", PRODUCTION, "--policy", _no_benchmark(t)],
        ["empty-policy.yml names no benchmark"],
    ),
    (
        "a YAML syntax error shows the line where the construct starts, quoted",
        lambda t: [BETTER, "--baseline", PRODUCTION, "--policy", _yaml_error(t)],
        ["broken.yml: line 4, column 11", "4 |   sha256: ["],
    ),
    (
        "an unknown primary metric is refused with the known names",
        lambda t: [BETTER, "--baseline", PRODUCTION, "--policy", _policy(t, primary_metric="aucc")],
        ["ci-policy.yml: line", "unknown metric 'aucc'", "known metrics: accuracy", "roc_auc"],
    ),
    (
        "an unwritable html path is refused before evaluating",
        lambda t: [BETTER, "--baseline", PRODUCTION, "--policy", _policy(t), "--html", t / "x/r"],
        ["--html", "the directory", "does not exist"],
    ),
    (
        "an html path that is a directory is refused",
        lambda t: [BETTER, "--baseline", PRODUCTION, "--policy", _policy(t), "--html", t],
        ["is a directory, not a file"],
    ),
    (
        "no baseline and no --no-baseline is refused",
        lambda t: [BETTER, "--policy", _policy(t)],
        ["pass --baseline DIR", "--no-baseline"],
    ),
    (
        "--output without --format is refused",
        lambda t: [BETTER, "--baseline", PRODUCTION, "--policy", _policy(t), "--output", t / "r"],
        ["--output needs --format"],
    ),
    (
        "a missing weights file is named, not a traceback",
        lambda t: [_no_weights(t), "--baseline", PRODUCTION, "--policy", _policy(t)],
        ["weights file weights/model.onnx named in config.yaml is missing"],
    ),
]


@pytest.mark.parametrize("args, expected", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_message_and_exit_code_2(
    tmp_path: Path, args: object, expected: list[str]
) -> None:
    code, out, err = _invoke(*args(tmp_path))  # type: ignore[operator]
    text = out + err
    assert code == 2, text
    for fragment in expected:
        assert fragment in text, text
    assert "Traceback" not in text and "Error:" not in text
    assert "/retest" not in text
    assert ".shipyard.yml" not in text  # the file given is named, never the registry's default


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("shipyard ")


def test_json_to_stdout_and_strict_needs_review_exits_1(tmp_path: Path) -> None:
    code, out, err = _invoke(
        SEGMENT,
        "--baseline",
        PRODUCTION,
        "--policy",
        _policy(tmp_path),
        "--format",
        "json",
        "--strict",
    )
    assert code == 1, err
    report = json.loads(out)  # stdout is the report and nothing else
    assert report["verdict"]["decision"] == "needs_review"
    assert "Needs review: churn scores ROC AUC" in err and "(exit 1)" in err


def test_a_repeat_run_reuses_the_verified_artifacts_and_reports_the_same(tmp_path: Path) -> None:
    args = (BETTER, "--baseline", PRODUCTION, "--policy", _policy(tmp_path), "--format", "json")
    first = json.loads(_invoke(*args)[1])
    # Both artifacts passed verification, so both passes are recorded for the next run.
    assert len(list((tmp_path / "xdg-cache/shipyard/verified").glob("*.json"))) == 2
    second = json.loads(_invoke(*args)[1])
    assert second["overall"] == first["overall"] and second["verdict"] == first["verdict"]


def test_no_baseline_labels_the_comparison_and_writes_the_output_file(tmp_path: Path) -> None:
    output = tmp_path / "report.md"
    code, out, err = _invoke(
        BETTER,
        "--no-baseline",
        "--policy",
        _policy(tmp_path),
        "--format",
        "markdown",
        "--output",
        output,
    )
    assert code == 0, err
    assert out.count("\n") == 1 and out.startswith("Eligible for auto-promotion: churn")
    assert "Compared with a class-prior baseline (no production model)" in out
    assert "class-prior baseline (no production model)" in output.read_text()
    assert "/retest" not in out + err + output.read_text()


def test_the_html_report_shows_the_same_figures_as_one_rendered_from_its_json(
    tmp_path: Path,
) -> None:
    """The command line draws the comparison figures while latency is measured; they are the
    figures the report itself would give (latency on, as a user runs it)."""
    from evaluators.rendering.render import render_html
    from evaluators.report import EvaluationReport

    policy = yaml.safe_load(_policy(tmp_path).read_text())
    policy["latency"]["enabled"] = True
    (tmp_path / "ci-policy.yml").write_text(yaml.safe_dump(policy))
    html, json_path = tmp_path / "report.html", tmp_path / "report.json"
    code, _, err = _invoke(
        BETTER, "--baseline", PRODUCTION, "--policy", tmp_path / "ci-policy.yml",
        "--html", html, "--json", json_path,
    )  # fmt: skip
    assert code == 0, err
    report = EvaluationReport.model_validate_json(json_path.read_text())
    assert report.latency is not None

    def images(text: str) -> list[str]:
        return re.findall(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+", text)

    written, rendered = images(html.read_text()), images(render_html(report, in_pull_request=False))
    assert len(written) == len(rendered) == 3  # reliability, segments, latency
    assert written == rendered
