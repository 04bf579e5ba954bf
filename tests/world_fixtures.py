"""Pytest fixtures building a RegistryWorld per test (sandbox + registry + bot over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.registry_world import RegistryWorld

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def world(database_url: str) -> Iterator[RegistryWorld]:
    w = RegistryWorld(fixtures=FIXTURES, database_url=database_url)
    try:
        yield w
        assert w.sandbox.violations == [], "the bot sent GitHub a request outside its schema"
    finally:
        w.close()
