"""Shared test fixtures: databases (SQLite and PostgreSQL), App keys, settings, servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.base.settings import Settings, load_settings

if TYPE_CHECKING:
    from distributed import LocalCluster

WEBHOOK_SECRET = "it's-a-sandbox-webhook-secret"
POSTGRES_ENV = "SHIPYARD_TEST_POSTGRES_URL"


def _postgres_base_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if url is None and os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but {POSTGRES_ENV} is not set: PostgreSQL tests must run")
    return url


@contextmanager
def _fresh_postgres_schema() -> Iterator[str]:
    """A new, empty schema on the test PostgreSQL, dropped afterwards."""
    base = _postgres_base_url()
    if base is None:
        pytest.skip(f"{POSTGRES_ENV} not set")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new schema on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shipyard.db'}"
        return
    with _fresh_postgres_schema() as url:
        yield url


@pytest.fixture(scope="session")
def app_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def make_settings(app_private_key: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings as an operator would set them, with test values."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "github_app_id": 4242,
            "github_private_key": app_private_key,
            "github_webhook_secret": WEBHOOK_SECRET,
            "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
            "github_api_url": "http://127.0.0.1:9",
            "public_url": "http://127.0.0.1:8000",
        }
        values.update(overrides)
        return load_settings(**values)

    return build


pytest_plugins = ["tests.world_fixtures"]


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """A fresh schema on the test PostgreSQL (for what only PostgreSQL can show)."""
    with _fresh_postgres_schema() as url:
        yield url


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A Dask LocalCluster of 2 worker processes, 1 thread each (one per test module)."""
    from distributed import LocalCluster  # imported here: most tests never need dask

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as found:
        yield found
