"""Settings refuse unsafe values at start and never print a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.base.settings import SettingsError, load_settings


def _base(key: str) -> dict[str, Any]:
    return {
        "github_app_id": 1,
        "github_private_key": key,
        "github_webhook_secret": "a-real-webhook-secret-1234",
    }


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"github_webhook_secret": ""}, "SHIPYARD_GITHUB_WEBHOOK_SECRET is empty or a placeholder"),
        ({"github_webhook_secret": "changeme"}, "placeholder"),
        ({"github_webhook_secret": "<your secret>"}, "placeholder"),
        ({"github_webhook_secret_previous": "xxx"}, "SHIPYARD_GITHUB_WEBHOOK_SECRET_PREVIOUS"),
        ({"github_private_key": None}, "SHIPYARD_GITHUB_PRIVATE_KEY_PATH"),
        ({"github_private_key": "-----BEGIN nonsense"}, "not a valid PEM key"),
        ({"github_api_url": "ftp://example"}, "SHIPYARD_GITHUB_API_URL"),
        ({"github_app_id": 0}, "SHIPYARD_GITHUB_APP_ID"),
    ],
    ids=[
        "an empty webhook secret is refused",
        "a placeholder webhook secret is refused",
        "an angle-bracket placeholder is refused",
        "a placeholder previous secret is refused",
        "no private key at all is refused",
        "a private key that is not PEM is refused",
        "a non-http API URL is refused",
        "an app id of zero is refused",
    ],
)
def test_unsafe_settings_are_refused_with_a_clear_message(
    app_private_key: str, override: dict[str, Any], expected: str
) -> None:
    values = _base(app_private_key) | override
    with pytest.raises(SettingsError) as err:
        load_settings(**values)
    assert expected in str(err.value)
    assert "BEGIN" not in str(err.value).replace("-----BEGIN nonsense", "")


def test_error_messages_never_contain_the_secret(app_private_key: str) -> None:
    values = _base(app_private_key) | {"github_app_id": -5}
    with pytest.raises(SettingsError) as err:
        load_settings(**values)
    assert "a-real-webhook-secret-1234" not in str(err.value)
    assert "PRIVATE KEY" not in str(err.value)


def test_settings_repr_hides_secrets(app_private_key: str) -> None:
    settings = load_settings(**_base(app_private_key))
    shown = repr(settings) + str(settings.model_dump())
    assert "a-real-webhook-secret-1234" not in shown
    assert "PRIVATE KEY" not in shown


def test_environment_is_read_with_the_shipyard_prefix(
    app_private_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(app_private_key)
    monkeypatch.setenv("SHIPYARD_GITHUB_APP_ID", "77")
    monkeypatch.setenv("SHIPYARD_GITHUB_PRIVATE_KEY_PATH", str(key_file))
    monkeypatch.setenv("SHIPYARD_GITHUB_WEBHOOK_SECRET", "env-webhook-secret-987")
    monkeypatch.setenv("SHIPYARD_GITHUB_WEBHOOK_SECRET_PREVIOUS", "old-webhook-secret-654")
    monkeypatch.setenv("SHIPYARD_GITHUB_API_URL", "https://ghe.example.com/api/v3/")
    settings = load_settings()
    assert settings.github_app_id == 77
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.webhook_secrets() == [b"env-webhook-secret-987", b"old-webhook-secret-654"]
    assert settings.database_url.startswith("sqlite:///")
    assert "PRIVATE KEY" in settings.private_key_pem()


def test_unreadable_key_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read SHIPYARD_GITHUB_PRIVATE_KEY_PATH"):
        load_settings(
            github_app_id=1,
            github_private_key_path=tmp_path / "missing.pem",
            github_webhook_secret="a-real-webhook-secret-1234",
        )
