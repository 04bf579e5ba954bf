"""The webhook inbox: deliveries are stored before the 202, then claimed and handled by workers.

A claim is a short lease renewed by a heartbeat (bot/runtime/heartbeat.py) while its delivery is
handled: a worker that dies mid-delivery leaves a row another worker (or the restarted
process) takes over within a minute. Workers claim small batches with one UPDATE … RETURNING;
rows of a batch not started within a quarter of the lease are handed back. A row that used
MAX_ATTEMPTS is never claimed again; it is failed and reported. Handlers are idempotent, so a
delivery handled twice after a crash does not double a side effect.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from bot.store.db import Store
from bot.store.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)  # renewed by a heartbeat while the handler runs
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


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Pending and due, or processing with a lapsed lease — and attempts left."""
    return and_(
        Delivery.attempts < MAX_ATTEMPTS,
        or_(
            and_(
                Delivery.status == DeliveryStatus.PENDING.value,
                or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
            ),
            and_(Delivery.status == DeliveryStatus.PROCESSING.value, Delivery.lease_until <= now),
        ),
    )


def claim_next(store: Store, *, now: datetime, lease: timedelta = LEASE) -> Delivery | None:
    """Atomically take the oldest due delivery; the row carries a fresh `claim_token`."""
    rows = claim_batch(store, now=now, limit=1, lease=lease)
    return rows[0] if rows else None


def claim_batch(
    store: Store, *, now: datetime, limit: int, lease: timedelta = LEASE
) -> list[Delivery]:
    """Atomically take up to `limit` of the oldest due deliveries under one fresh claim token."""
    due = _claimable(now)
    oldest = select(Delivery.id).where(due).order_by(Delivery.id).limit(limit)
    if store.is_postgres:
        # Rows another replica holds are skipped, not waited for.
        oldest = oldest.with_for_update(skip_locked=True)
    # One UPDATE … RETURNING is the claim: on SQLite one writer at a time, on PostgreSQL the
    # row lock of the subquery excludes other replicas; `due` is checked again by the UPDATE.
    # A materialized CTE: `id IN (subquery … LIMIT n)` was seen to take more than n rows.
    picked = oldest.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
    token = uuid.uuid4().hex
    claim = (
        update(Delivery)
        .where(Delivery.id == picked.c.id, due)
        .values(
            status=DeliveryStatus.PROCESSING.value,
            lease_until=now + lease,
            claim_token=token,
            attempts=Delivery.attempts + 1,
        )
        .returning(Delivery)
        .execution_options(synchronize_session=False)  # a fresh session: nothing to sync
    )
    with store.session() as session:
        rows = sorted(session.scalars(claim), key=lambda row: row.id)
        session.expunge_all()
        return rows


def release(store: Store, *, delivery_pks: list[int], claim_token: str | None) -> None:
    """Hand back claimed deliveries not yet started: due again at once, the attempt uncounted."""
    if not delivery_pks:
        return
    with store.engine.begin() as conn:
        conn.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(delivery_pks),
                Delivery.status == DeliveryStatus.PROCESSING.value,
                Delivery.claim_token == claim_token,
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                lease_until=None,
                claim_token=None,
                attempts=Delivery.attempts - 1,
            )
        )


def finish_many(
    store: Store, *, delivery_pks: list[int], claim_token: str | None, now: datetime
) -> None:
    """Mark these deliveries done in one UPDATE — only those this claim still owns."""
    if not delivery_pks:
        return
    with store.engine.begin() as conn:
        conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_pks), Delivery.claim_token == claim_token)
            .values(
                status=DeliveryStatus.DONE.value,
                processed_at=now,
                lease_until=None,
                claim_token=None,
                error=None,
            )
        )


def take_exhausted(store: Store, *, now: datetime) -> list[Delivery]:
    """Rows that used every attempt and whose last worker is gone: marked failed, returned once.

    A worker that dies on every attempt never reaches `finish`; without this the row would
    sit unclaimable and unreported.
    """
    stuck = and_(
        Delivery.attempts >= MAX_ATTEMPTS,
        Delivery.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.PROCESSING.value]),
        or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
    )
    with store.session() as session:
        query = select(Delivery.id).where(stuck).order_by(Delivery.id).limit(20)
        if store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            return []
        token = uuid.uuid4().hex
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), stuck)
            .values(
                status=DeliveryStatus.FAILED.value,
                processed_at=now,
                lease_until=None,
                claim_token=token,
                error="the worker stopped on every attempt",
            )
        )
        rows = list(session.scalars(select(Delivery).where(Delivery.claim_token == token)))
        for row in rows:
            session.expunge(row)
        return rows


def finish(
    store: Store,
    *,
    delivery_pk: int,
    claim_token: str | None,
    now: datetime,
    error: str | None = None,
) -> str | None:
    """Mark done, or schedule a retry with back-off, or give up after MAX_ATTEMPTS.

    Returns the new status, or None when the claim was lost (another worker owns the row
    now, so this outcome is not recorded).
    """
    with store.session() as session:
        row = session.get(Delivery, delivery_pk)
        if row is None or row.claim_token != claim_token:
            return None
        row.claim_token = None
        if error is None:
            row.status = DeliveryStatus.DONE.value
            row.processed_at = now
            row.lease_until = None
            row.error = None
            return row.status
        row.error = error[-4000:]
        if row.attempts >= MAX_ATTEMPTS:
            row.status = DeliveryStatus.FAILED.value
            row.processed_at = now
            row.lease_until = None
        else:
            row.status = DeliveryStatus.PENDING.value
            row.lease_until = now + timedelta(seconds=30 * 2 ** (row.attempts - 1))
        return row.status


def depth(store: Store, *, now: datetime) -> tuple[int, float]:
    """Deliveries waiting or running, and the age in seconds of the oldest of them."""
    waiting = Delivery.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.PROCESSING.value])
    with store.session() as session:
        count, oldest = session.execute(
            select(func.count(Delivery.id), func.min(Delivery.received_at)).where(waiting)
        ).one()
    age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
    return int(count), age


def pending_count(store: Store) -> int:
    with store.session() as session:
        rows = session.scalars(
            select(Delivery.id).where(
                Delivery.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.PROCESSING.value])
            )
        )
        return len(list(rows))
