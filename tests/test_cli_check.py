"""`shipyard check`, `init-model` and `config-schema`: the candidate check on a laptop."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli.local_check import check_model_dir, read_local_model_dir
from bot.cli.main import app
from bot.promotion.registration_gate import evaluate_candidate

ROOT = Path(__file__).resolve().parents[1]
BETTER = ROOT / "fixtures/registry/candidate_better/models/churn"


def _model(tmp_path: Path) -> Path:
    directory = tmp_path / "models/churn"
    shutil.copytree(BETTER, directory)
    return directory


def _drop_changelog(d: Path) -> None:
    (d / "CHANGELOG.md").unlink()


def _bad_yaml(d: Path) -> None:
    (d / "config.yaml").write_text("name: churn\ntask: [binary\n")


def _wrong_name(d: Path) -> None:
    config = yaml.safe_load((d / "config.yaml").read_text())
    config["name"] = "fraud"
    (d / "config.yaml").write_text(yaml.safe_dump(config))


def _pickle_weights(d: Path) -> None:
    (d / "weights/model.onnx").write_bytes(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00.")


def _lfs_pointer(d: Path) -> None:
    (d / "weights/model.onnx").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 + "\nsize 12\n"
    )


def _symlink(d: Path) -> None:
    (d / "weights/link.onnx").symlink_to(d / "weights/model.onnx")


CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("a missing CHANGELOG.md is named", _drop_changelog, "`CHANGELOG.md` is missing"),
    ("a YAML error in config.yaml names its line", _bad_yaml, "config.yaml: line 2"),
    ("a config naming another model is refused", _wrong_name, "names the model `fraud`"),
    ("pickled weights are refused", _pickle_weights, "`weights/model.onnx`:"),
    ("an unfetched LFS pointer says git lfs pull", _lfs_pointer, "git lfs pull"),
    ("a symlink is refused", _symlink, "symbolic links are not allowed"),
]


@pytest.mark.parametrize(
    "damage, message", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_check_reports_the_candidate_checks_message_and_exits_1(
    tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    directory = _model(tmp_path)
    damage(directory)
    result = CliRunner().invoke(app, ["check", str(directory)])
    assert result.exit_code == 1, result.stdout
    assert f"FAIL  {directory}" in result.stdout
    assert message in result.stdout


def test_check_says_what_the_pull_request_check_says(tmp_path: Path) -> None:
    directory = _model(tmp_path)
    _drop_changelog(directory)
    _wrong_name(directory)
    found = read_local_model_dir(directory)
    remote = evaluate_candidate(
        model="churn", files=found.files, lfs_paths=set(), file_errors=found.file_errors
    )
    assert check_model_dir(directory).problems == remote.problems


def test_check_maps_changed_files_to_their_model_directory(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    directory = _model(tmp_path)
    (tmp_path / "README.md").write_text("not a model")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["check", "models/churn/config.yaml", "models/churn/weights/model.onnx", "README.md"]
    )
    assert result.exit_code == 0, result.stdout
    assert result.stdout.count("ok  ") == 1
    assert f"ok  {directory}: churn: registered as a candidate" in result.stdout


def test_check_of_a_missing_directory_fails(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", str(tmp_path / "models/nope")])
    assert result.exit_code == 1
    assert "does not exist" in result.stdout


def test_init_model_scaffolds_a_directory_that_passes_the_check(
    tmp_path: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["init-model", "fraud", "--features", "amount,country_risk"])
    assert result.exit_code == 0, result.stdout
    assert "fraud: registered as a candidate" in result.stdout
    config = yaml.safe_load((tmp_path / "models/fraud/config.yaml").read_text())
    assert config["features"] == ["amount", "country_risk"]
    again = CliRunner().invoke(app, ["init-model", "fraud"])
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_config_schema_describes_config_yaml() -> None:
    result = CliRunner().invoke(app, ["config-schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"name", "task", "format", "weights", "features"} <= set(schema["required"])
    assert "binary_classification" in json.dumps(schema)


def test_pre_commit_hook_runs_shipyard_check() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["entry"] == "shipyard check" and hook["pass_filenames"] is True
    assert hook["language"] == "python"
