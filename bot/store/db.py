"""Engine and sessions; migrations run through Alembic at start."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, busy timeout) or PostgreSQL (psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_engine(url, pool_size=5, max_overflow=5)
    _ping_when_idle(engine)
    return engine


IDLE_PING_S = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle for a while.

    `pool_pre_ping` pings on every checkout: a round trip before each transaction, which on the
    webhook path was a fifth of the work. A connection idle for longer than IDLE_PING_S is the
    one a restart or a firewall may have cut; a busy one that breaks fails its statement, and
    SQLAlchemy then discards every connection of the pool made before the failure.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_conn, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(conn, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            alive = engine.dialect.do_ping(conn)
        except Exception as error:
            raise exc.DisconnectionError() from error  # the pool retries with a new connection
        if not alive:
            raise exc.DisconnectionError()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent, safe on every start)."""
    script_dir = resources.files("bot.store") / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(script_dir))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """Owns the engine and hands out transactional sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def reachable(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False


def open_store(url: str) -> Store:
    """Connect and migrate."""
    engine = make_engine(url)
    migrate(engine)
    return Store(engine)
