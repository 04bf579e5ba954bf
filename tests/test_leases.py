"""Claims are short leases with tokens: lapsed leases are taken over, a worker that lost its
lease records nothing, and a delivery out of attempts is never claimed again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.base.clock import ManualClock
from bot.promotion.evaluation_queue import claim_next as claim_evaluation
from bot.promotion.evaluation_queue import enqueue
from bot.runtime.heartbeat import Lease, LeaseLost
from bot.runtime.inbox import MAX_ATTEMPTS, claim_next, finish, record_delivery, take_exhausted
from bot.store.db import Store, open_store
from bot.store.models import Delivery, DeliveryStatus, Evaluation, EvaluationStatus

LEASE = timedelta(seconds=30)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = open_store(database_url)
    try:
        yield s
    finally:
        s.engine.dispose()


def _record(store: Store, clock: ManualClock, delivery_id: str = "d1") -> None:
    payload = {"action": "opened", "repository": {"full_name": "acme/reg"}}
    record_delivery(
        store,
        delivery_id=delivery_id,
        event="pull_request",
        payload=payload,
        body=json.dumps(payload).encode(),
        now=clock.now(),
    )


def test_a_lapsed_delivery_lease_is_taken_over_and_the_old_worker_records_nothing(
    store: Store,
) -> None:
    clock = ManualClock()
    _record(store, clock)
    first = claim_next(store, now=clock.now())
    assert first is not None
    assert claim_next(store, now=clock.now() + timedelta(seconds=29)) is None
    second = claim_next(store, now=clock.now() + timedelta(seconds=31))
    assert second is not None and second.claim_token != first.claim_token
    assert (
        finish(store, delivery_pk=first.id, claim_token=first.claim_token, now=clock.now()) is None
    )
    done = finish(store, delivery_pk=second.id, claim_token=second.claim_token, now=clock.now())
    assert done == DeliveryStatus.DONE.value


def test_a_heartbeat_keeps_a_lease_and_notices_when_it_is_lost(store: Store) -> None:
    clock = ManualClock()
    _record(store, clock)
    row = claim_next(store, now=clock.now())
    assert row is not None and row.claim_token is not None
    lease = Lease(
        store=store,
        model=Delivery,
        pk=row.id,
        token=row.claim_token,
        active_status=DeliveryStatus.PROCESSING.value,
        clock=clock,
        duration=LEASE,
        every_s=3600,  # renewed by hand below
    )
    clock.advance(timedelta(seconds=25))
    assert lease.renew()
    clock.advance(timedelta(seconds=25))  # 50 s after the claim, but renewed 25 s ago
    assert claim_next(store, now=clock.now()) is None
    clock.advance(timedelta(seconds=31))
    assert claim_next(store, now=clock.now()) is not None  # the heartbeat stopped: taken over
    with pytest.raises(LeaseLost):
        lease.check()


def test_a_delivery_out_of_attempts_is_failed_once_and_never_claimed_again(store: Store) -> None:
    clock = ManualClock()
    _record(store, clock)
    for _ in range(MAX_ATTEMPTS):  # a worker that dies on every attempt never calls finish
        assert claim_next(store, now=clock.now()) is not None
        clock.advance(timedelta(seconds=31))
    assert claim_next(store, now=clock.now()) is None
    exhausted = take_exhausted(store, now=clock.now())
    assert [(r.delivery_id, r.status, r.attempts) for r in exhausted] == [
        ("d1", DeliveryStatus.FAILED.value, MAX_ATTEMPTS)
    ]
    clock.advance(timedelta(days=1))
    assert take_exhausted(store, now=clock.now()) == []
    assert claim_next(store, now=clock.now()) is None


def _queue(store: Store, clock: ManualClock) -> None:
    with store.session() as session:
        enqueue(
            session,
            now=clock.now(),
            repository="acme/reg",
            installation_id=1,
            pr_number=3,
            head_sha="a" * 40,
            base_sha="b" * 40,
            base_ref="main",
            model="churn",
        )


def test_retest_requeues_an_evaluation_only_once_its_worker_is_gone(store: Store) -> None:
    clock = ManualClock()
    _queue(store, clock)
    running = claim_evaluation(store, now=clock.now())
    assert running is not None
    _queue(store, clock)  # still leased: /retest finds it busy
    with store.session() as session:
        assert [e.status for e in session.query(Evaluation)] == ["in_progress"]
    clock.advance(timedelta(seconds=31))
    _queue(store, clock)  # the lease lapsed: taken over, its old worker can no longer write
    with store.session() as session:
        rows = list(session.query(Evaluation))
        assert [(e.status, e.claim_token) for e in rows] == [(EvaluationStatus.QUEUED.value, None)]
