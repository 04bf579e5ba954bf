"""Claiming work rows: the one way a replica takes rows that no other replica may take too.

Select the ids (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas pass each other's rows
by), then mark them with a fresh claim token in an UPDATE that repeats the condition — on
SQLite, the single writer, that conditional update is the claim itself. The token is what
the claimer later proves ownership with (heartbeats, finishing); rows come back detached.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select, update

from bot.store.db import Store

Row = TypeVar("Row")


def claim_rows(
    store: Store,
    model: type[Row],
    *,
    where: ColumnElement[bool],
    order_by: Sequence[Any],
    limit: int,
    values: Mapping[str, Any],
) -> list[Row]:
    """Mark up to `limit` rows matching `where` with `values` and a new claim token."""
    table: Any = model
    with store.session() as session:
        query = select(table.id).where(where).order_by(*order_by).limit(limit)
        if store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            return []
        token = uuid.uuid4().hex
        session.execute(
            update(table).where(table.id.in_(ids), where).values(claim_token=token, **values)
        )
        rows: list[Row] = list(session.scalars(select(table).where(table.claim_token == token)))
        for row in rows:
            session.expunge(row)
        return rows
