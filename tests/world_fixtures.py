"""Pytest fixtures building a RegistryWorld per test (sandbox + registry + bot over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from bot.cli.registry_world import RegistryWorld
from bot.sandbox.github import generate_app_keypair

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@cache
def shared_app_keypair() -> tuple[str, str]:
    """One App key pair for every world of the session (each world has its own sandbox, so
    sharing it proves as much; generating a 2048-bit RSA key per world cost ~0.1-0.2 s)."""
    return generate_app_keypair()


@pytest.fixture
def world(database_url: str) -> Iterator[RegistryWorld]:
    w = RegistryWorld(
        fixtures=FIXTURES, database_url=database_url, app_keypair=shared_app_keypair()
    )
    try:
        yield w
        assert w.sandbox.violations == [], "the bot sent GitHub a request outside its schema"
    finally:
        w.close()
