"""The outbox's own rules, on SQLite and PostgreSQL, with a test kind whose effect is a list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.base.clock import ManualClock
from bot.github.api import GitHubError
from bot.runtime import outbox
from bot.store.db import Store, open_store
from bot.store.models import EffectStatus


@dataclass(frozen=True)
class _Runtime:
    store: Store
    clock: ManualClock

    @property
    def github(self) -> outbox.Installations:
        raise AssertionError("no GitHub here")


class _Target:
    """Where the test kind's effects land, and how it should fail next."""

    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []
        self.failures: list[int] = []  # statuses to raise, one per attempt
        self.during: list[Any] = []  # callbacks run inside the next attempt

    def run(self, attempt: outbox.Attempt) -> dict[str, Any]:
        while self.during:
            self.during.pop(0)()
        if self.failures:
            raise GitHubError("POST", "/x", self.failures.pop(0), "Server Error")
        self.applied.append(attempt.payload)
        return {"count": len(self.applied)}


@pytest.fixture
def env(database_url: str) -> Iterator[tuple[_Runtime, _Target]]:
    store = open_store(database_url)
    target = _Target()
    outbox.register("test_effect", target.run)
    try:
        yield _Runtime(store=store, clock=ManualClock()), target
    finally:
        store.engine.dispose()


def _submit(rt: _Runtime, key: str, value: int, **kw: Any) -> outbox.EffectState:
    return outbox.submit(
        rt, key=key, kind="test_effect", payload={"v": value}, installation_id=None, **kw
    )


def test_a_one_shot_effect_submitted_twice_happens_once(env: Any) -> None:
    rt, target = env
    assert _submit(rt, "k", 1).done
    assert _submit(rt, "k", 2).done  # a redelivery: the key is already recorded
    assert target.applied == [{"v": 1}]


def test_a_newer_desired_state_replaces_the_applied_one(env: Any) -> None:
    rt, target = env
    _submit(rt, "k", 1, replace=True, version=1)
    _submit(rt, "k", 1, replace=True, version=1)  # same rendering: nothing to do
    _submit(rt, "k", 2, replace=True, version=2)
    assert target.applied == [{"v": 1}, {"v": 2}]


def test_a_rendering_from_older_state_never_replaces_a_newer_one(env: Any) -> None:
    rt, target = env
    _submit(rt, "k", 2, replace=True, version=5)
    _submit(rt, "k", 1, replace=True, version=4)
    assert target.applied == [{"v": 2}]


def test_a_state_submitted_while_the_effect_runs_is_applied_after_it(env: Any) -> None:
    rt, target = env
    # Another replica asks for v=2 while this one is applying v=1 (it holds the lease).
    target.during.append(lambda: _submit(rt, "k", 2, replace=True))
    _submit(rt, "k", 1, replace=True)
    assert target.applied == [{"v": 1}, {"v": 2}]
    assert outbox.state_of(rt.store, "k").status is EffectStatus.DONE


def test_a_transient_failure_is_retried_by_the_tick_after_a_back_off(env: Any) -> None:
    rt, target = env
    target.failures = [502, 502, 502]
    state = _submit(rt, "k", 1)
    assert state.status is EffectStatus.PENDING and target.applied == []
    assert outbox.drain(rt) == 0  # not due yet
    rt.clock.advance(timedelta(minutes=5))
    outbox.drain(rt)  # the third try fails too
    assert target.applied == []
    rt.clock.advance(timedelta(minutes=5))
    outbox.drain(rt)
    assert target.applied == [{"v": 1}]
    assert outbox.state_of(rt.store, "k").done


def test_a_refusal_fails_the_effect_visibly_and_is_not_retried(env: Any) -> None:
    rt, target = env
    target.failures = [422]
    state = _submit(rt, "k", 1)
    assert state.status is EffectStatus.FAILED and state.error_status == 422
    rt.clock.advance(timedelta(hours=1))
    assert outbox.drain(rt) == 0
    assert target.applied == []


def test_an_effect_that_keeps_failing_gives_up_after_the_bound(env: Any) -> None:
    rt, target = env
    target.failures = [503] * (outbox.MAX_ATTEMPTS + 5)
    _submit(rt, "k", 1)
    for _ in range(outbox.MAX_ATTEMPTS):
        rt.clock.advance(timedelta(hours=1))
        outbox.drain(rt)
    assert outbox.state_of(rt.store, "k").status is EffectStatus.FAILED
    assert outbox.unfinished_count(rt.store) == 0
