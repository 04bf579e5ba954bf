"""The webhook inbox: deliveries are stored before the 202, then claimed and handled by workers.

A claim is a lease: a worker that dies mid-delivery leaves a row another worker (or the
restarted process) takes over when the lease runs out. Handlers are idempotent, so a
delivery handled twice after a crash does not double a side effect.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from bot.store.db import Store
from bot.store.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 6


def index_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The inbox's index columns, read straight from the payload (no model validation: this runs
    on the acknowledgement path, and an odd payload is still stored and acknowledged)."""
    action = payload.get("action")
    installation = payload.get("installation")
    repository = payload.get("repository")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    return {
        "action": action if isinstance(action, str) and len(action) <= 100 else None,
        "installation_id": installation_id
        if isinstance(installation_id, int) and not isinstance(installation_id, bool)
        and 0 < installation_id < 2**63
        else None,
        "repository": full_name if isinstance(full_name, str) and len(full_name) <= 300 else None,
    }


def _insert_new(store: Store) -> Insert:
    """INSERT … ON CONFLICT (delivery_id) DO NOTHING: a duplicate is no error and no rollback."""
    insert = postgresql_insert if store.is_postgres else sqlite_insert
    return insert(Delivery).on_conflict_do_nothing(index_elements=["delivery_id"])


def record_delivery(
    store: Store,
    *,
    delivery_id: str,
    event: str,
    payload: dict[str, Any],
    body: bytes,
    now: datetime,
) -> bool:
    """Store a delivery once; False when this delivery id was already stored.

    One core INSERT in its own short transaction: the acknowledgement waits for nothing else.
    """
    values = {
        "delivery_id": delivery_id,
        "event": event,
        **index_fields(payload),
        "payload": body.decode("utf-8"),
        "received_at": now,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
    }
    with store.engine.begin() as conn:
        result = conn.execute(_insert_new(store), values)
    return bool(result.rowcount == 1)


def claim_next(store: Store, *, now: datetime) -> Delivery | None:
    """Atomically take the oldest due delivery (pending, or processing with a lapsed lease)."""
    due = or_(
        and_(
            Delivery.status == DeliveryStatus.PENDING.value,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
        ),
        and_(Delivery.status == DeliveryStatus.PROCESSING.value, Delivery.lease_until <= now),
    )
    with store.session() as session:
        query = select(Delivery.id).where(due).order_by(Delivery.id).limit(1)
        if store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        delivery_pk = session.scalar(query)
        if delivery_pk is None:
            return None
        # The conditional UPDATE is the claim on SQLite (one writer at a time); on
        # PostgreSQL the row lock above already excludes other replicas.
        claimed = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_pk, due)
            .values(
                status=DeliveryStatus.PROCESSING.value,
                lease_until=now + LEASE,
                attempts=Delivery.attempts + 1,
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(Delivery, delivery_pk)
        assert row is not None
        session.expunge(row)
        return row


def finish(store: Store, *, delivery_pk: int, now: datetime, error: str | None = None) -> None:
    """Mark done, or schedule a retry with back-off, or give up after MAX_ATTEMPTS."""
    with store.session() as session:
        row = session.get(Delivery, delivery_pk)
        if row is None:
            return
        if error is None:
            row.status = DeliveryStatus.DONE.value
            row.processed_at = now
            row.lease_until = None
            row.error = None
            return
        row.error = error[-4000:]
        if row.attempts >= MAX_ATTEMPTS:
            row.status = DeliveryStatus.FAILED.value
            row.processed_at = now
        else:
            row.status = DeliveryStatus.PENDING.value
            row.lease_until = now + timedelta(seconds=30 * 2 ** (row.attempts - 1))


def pending_count(store: Store) -> int:
    with store.session() as session:
        rows = session.scalars(
            select(Delivery.id).where(
                Delivery.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.PROCESSING.value])
            )
        )
        return len(list(rows))
