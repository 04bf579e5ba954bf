"""The webhook inbox: deliveries are stored before the 202, then claimed and handled by workers.

A claim is a short lease renewed by a heartbeat (bot/heartbeat.py): a worker that dies
mid-delivery leaves a row another worker (or the restarted process) takes over within a
minute. A row that used MAX_ATTEMPTS is never claimed again; it is failed and reported.
Handlers are idempotent, so a delivery handled twice after a crash does not double a side
effect.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.events import parse_envelope
from bot.store.db import Store
from bot.store.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)  # renewed by a heartbeat while the handler runs
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
    due = _claimable(now)
    with store.session() as session:
        query = select(Delivery.id).where(due).order_by(Delivery.id).limit(1)
        if store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        delivery_pk = session.scalar(query)
        if delivery_pk is None:
            return None
        # The conditional UPDATE is the claim on SQLite (one writer at a time); on
        # PostgreSQL the row lock above already excludes other replicas.
        token = uuid.uuid4().hex
        claimed = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_pk, due)
            .values(
                status=DeliveryStatus.PROCESSING.value,
                lease_until=now + lease,
                claim_token=token,
                attempts=Delivery.attempts + 1,
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(Delivery, delivery_pk)
        assert row is not None
        session.expunge(row)
        return row


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
