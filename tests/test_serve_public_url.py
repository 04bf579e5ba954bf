"""`shipyard serve` and `work` refuse to start until SHIPYARD_PUBLIC_URL is set explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.base.settings import load_settings
from bot.cli.main import app, public_url_problem


def _environment(monkeypatch: pytest.MonkeyPatch, key: str, tmp_path: Path) -> None:
    for name in ("SHIPYARD_PUBLIC_URL", "SHIPYARD_GITHUB_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "app.pem"
    key_file.write_text(key)
    monkeypatch.setenv("SHIPYARD_GITHUB_APP_ID", "77")
    monkeypatch.setenv("SHIPYARD_GITHUB_PRIVATE_KEY_PATH", str(key_file))
    monkeypatch.setenv("SHIPYARD_GITHUB_WEBHOOK_SECRET", "env-webhook-secret-987")
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")


@pytest.mark.parametrize("command", ["serve", "work"])  # `work` posts the links too
def test_serve_without_a_public_url_exits_2_and_says_what_to_set(
    app_private_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    _environment(monkeypatch, app_private_key, tmp_path)
    result = CliRunner().invoke(app, [command, "--port", "1"])
    assert result.exit_code == 2
    assert "SHIPYARD_PUBLIC_URL is not set" in result.stderr
    assert "https://shipyard.example.com" in result.stderr
    assert not (tmp_path / "never.db").exists()  # refused before anything started


def test_an_explicit_public_url_is_accepted(
    app_private_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _environment(monkeypatch, app_private_key, tmp_path)
    monkeypatch.setenv("SHIPYARD_PUBLIC_URL", "https://shipyard.acme.example")
    assert public_url_problem(load_settings()) is None
    monkeypatch.delenv("SHIPYARD_PUBLIC_URL")
    assert public_url_problem(load_settings()) is not None
