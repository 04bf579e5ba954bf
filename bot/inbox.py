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
        "installation_id": installation_id if _is_bigint(installation_id) else None,
        "repository": full_name if isinstance(full_name, str) and len(full_name) <= 300 else None,
    }


def _is_bigint(value: object) -> bool:
    return type(value) is int and 0 < value < 2**63


def insert_new(store: Store) -> Insert:
    """INSERT … ON CONFLICT (delivery_id) DO NOTHING: a duplicate is no error and no rollback."""
    insert = postgresql_insert if store.is_postgres else sqlite_insert
    return insert(Delivery).on_conflict_do_nothing(index_elements=["delivery_id"])


def delivery_values(
    *, delivery_id: str, event: str, payload: dict[str, Any], body: bytes, now: datetime
) -> dict[str, Any]:
    """A new inbox row: the body stored as received, the index read from the payload."""
    return {
        "delivery_id": delivery_id,
        "event": event,
        **index_fields(payload),
        "payload": body.decode("utf-8"),
        "received_at": now,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
    }


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
    values = delivery_values(
        delivery_id=delivery_id, event=event, payload=payload, body=body, now=now
    )
    with store.engine.begin() as conn:
        result = conn.execute(insert_new(store), values)
    return bool(result.rowcount == 1)


def claim_next(store: Store, *, now: datetime) -> Delivery | None:
    """Atomically take the oldest due delivery (pending, or processing with a lapsed lease)."""
    rows = claim_batch(store, now=now, limit=1)
    return rows[0] if rows else None


def claim_batch(store: Store, *, now: datetime, limit: int) -> list[Delivery]:
    """Atomically take up to `limit` of the oldest due deliveries, each with its own lease."""
    due = or_(
        and_(
            Delivery.status == DeliveryStatus.PENDING.value,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
        ),
        and_(Delivery.status == DeliveryStatus.PROCESSING.value, Delivery.lease_until <= now),
    )
    oldest = select(Delivery.id).where(due).order_by(Delivery.id).limit(limit)
    if store.is_postgres:
        # Rows another replica holds are skipped, not waited for.
        oldest = oldest.with_for_update(skip_locked=True)
    # One UPDATE … RETURNING is the claim: on SQLite one writer at a time, on PostgreSQL the
    # row lock of the subquery excludes other replicas; `due` is checked again by the UPDATE.
    # A materialized CTE: `id IN (subquery … LIMIT n)` was seen to take more than n rows.
    picked = oldest.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
    claim = (
        update(Delivery)
        .where(Delivery.id == picked.c.id, due)
        .values(
            status=DeliveryStatus.PROCESSING.value,
            lease_until=now + LEASE,
            attempts=Delivery.attempts + 1,
        )
        .returning(Delivery)
        .execution_options(synchronize_session=False)  # a fresh session: nothing to sync
    )
    with store.session() as session:
        rows = sorted(session.scalars(claim), key=lambda row: row.id)
        session.expunge_all()
        return rows


def finish_many(store: Store, *, delivery_pks: list[int], now: datetime) -> None:
    """Mark these deliveries done in one UPDATE (a batch handled without an error)."""
    if not delivery_pks:
        return
    with store.engine.begin() as conn:
        conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_pks))
            .values(
                status=DeliveryStatus.DONE.value, processed_at=now, lease_until=None, error=None
            )
        )


def release(store: Store, *, delivery_pks: list[int]) -> None:
    """Hand back claimed deliveries not yet started: due again at once, the attempt uncounted."""
    if not delivery_pks:
        return
    with store.engine.begin() as conn:
        conn.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(delivery_pks),
                Delivery.status == DeliveryStatus.PROCESSING.value,
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                lease_until=None,
                attempts=Delivery.attempts - 1,
            )
        )


def finish(store: Store, *, delivery_pk: int, now: datetime, error: str | None = None) -> None:
    """Mark done, or schedule a retry with back-off, or give up after MAX_ATTEMPTS."""
    if error is None:  # the common case: one UPDATE, no read
        finish_many(store, delivery_pks=[delivery_pk], now=now)
        return
    with store.session() as session:
        row = session.get(Delivery, delivery_pk)
        if row is None:
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
