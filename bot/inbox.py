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
from sqlalchemy.exc import IntegrityError

from bot.events import parse_envelope
from bot.store.db import Store
from bot.store.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 6


def record_delivery(
    store: Store,
    *,
    delivery_id: str,
    event: str,
    payload: dict[str, Any],
    body: bytes,
    now: datetime,
) -> bool:
    """Store a delivery once; False when this delivery id was already stored."""
    envelope = parse_envelope(payload)
    row = Delivery(
        delivery_id=delivery_id,
        event=event,
        action=envelope.action,
        installation_id=envelope.installation.id if envelope.installation else None,
        repository=envelope.repository.full_name if envelope.repository else None,
        payload=body.decode("utf-8"),
        received_at=now,
        status=DeliveryStatus.PENDING.value,
        attempts=0,
    )
    try:
        with store.session() as session:
            session.add(row)
    except IntegrityError:
        return False
    return True


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
