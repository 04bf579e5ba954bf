"""The migrations build exactly the tables the code declares, on SQLite and PostgreSQL: an
operator upgrading with `alembic upgrade` gets the schema the bot reads and writes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.store import slack_models
from bot.store.db import open_store
from bot.store.models import Base

assert slack_models  # its tables join Base.metadata when imported


def test_the_migrated_schema_matches_the_declared_tables(database_url: str) -> None:
    store = open_store(database_url)  # runs every migration on a fresh database
    try:
        with store.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        store.engine.dispose()
    # Type spellings differ harmlessly between dialects; missing or extra tables, columns,
    # indexes and constraints do not.
    structural = [d for d in differences if not (isinstance(d, list) and d[0][0] == "modify_type")]
    assert structural == []
