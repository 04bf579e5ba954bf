"""Every write to GitHub (and Slack) as a keyed effect in the store, carried out exactly once.

A write is first recorded as a row of `outbox` whose UNIQUE `effect_key` names the effect
(`reply:…`, `report:…`, `check:…`, `merge:…`). The row is the claim: a second replica or a
redelivered event finds it and does not send the request again. Then the row is leased and
its kind's `run` performs it. `run` knows how to find out whether an earlier attempt took
effect (a hidden marker in a comment, a check run's name and `external_id`, the PR's merged
state) and does so before any non-idempotent write is repeated; the HTTP client itself never
repeats a write (bot/github/api.py).

Two shapes of effect share the table:
- one-shot (a command's reply, a reaction, a merge): the payload is fixed at first record;
- convergent (the report comment, a check run, the Slack message): `replace=True` stores the
  newest desired state and bumps `revision`; whoever holds the lease runs again until the
  applied revision is the newest, and `result` keeps what was learnt (the comment id) so the
  next run edits instead of creating.

A transient failure (5xx, no answer, rate limit) leaves the row pending with a back-off; the
scheduler tick (`drain`) retries it until done or MAX_ATTEMPTS, so an effect is never lost
with the delivery that caused it. Kinds whose caller must re-check before trying again (the
merge) are not retried in the background: their caller submits again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.base.clock import Clock
from bot.github.api import GitHubError, InstallationClient
from bot.store.db import Store
from bot.store.models import EffectStatus, OutboxEffect

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 12
INLINE_FAILURES = 2  # failed attempts made at once before leaving the effect to the tick
BACKOFF_BASE_S = 10.0
BACKOFF_MAX_S = 15 * 60.0


class EffectRefused(Exception):
    """The target refused the write for good (not transient): the effect fails, visibly."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class EffectInDoubt(Exception):
    """The write may or may not have happened and could not be checked yet: try again later."""


class Installations(Protocol):
    def installation(self, installation_id: int) -> InstallationClient: ...


class Runtime(Protocol):
    """What carrying out effects needs; the BotContext is one."""

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def github(self) -> Installations: ...


@dataclass(frozen=True)
class Local:
    """A runtime around one installation's client, for code that holds a client, not a context."""

    store: Store
    client: InstallationClient

    @property
    def clock(self) -> Clock:
        return self.client.clock

    @property
    def github(self) -> Installations:
        return self

    def installation(self, installation_id: int) -> InstallationClient:
        assert installation_id == self.client.installation_id
        return self.client


@dataclass(frozen=True)
class Attempt:
    """What a kind's `run` gets: the payload, what earlier tries learnt, which try this is."""

    rt: Runtime
    installation_id: int | None
    payload: dict[str, Any]
    result: dict[str, Any]
    attempt: int  # 1 on the first try; above 1 an earlier try may have taken effect

    @property
    def in_doubt(self) -> bool:
        return self.attempt > 1

    def client(self) -> InstallationClient:
        assert self.installation_id is not None, "a GitHub effect needs its installation"
        return self.rt.github.installation(self.installation_id)


Run = Callable[[Attempt], dict[str, Any]]


@dataclass(frozen=True)
class EffectKind:
    name: str
    run: Run
    background_retry: bool = True  # False: the caller re-checks and submits again


_KINDS: dict[str, EffectKind] = {}


def register(name: str, run: Run, *, background_retry: bool = True) -> None:
    """Declare how to carry out (and reconcile) one kind of effect."""
    _KINDS[name] = EffectKind(name, run, background_retry)


@dataclass(frozen=True)
class EffectState:
    """Where an effect stands after `submit`: done with its result, pending, or failed."""

    status: EffectStatus
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status is EffectStatus.DONE

    @property
    def error_status(self) -> int | None:
        value = self.result.get("error_status")
        return int(value) if value is not None else None

    @property
    def error_message(self) -> str:
        return str(self.result.get("error_message") or "")


def effect_key(*parts: object) -> str:
    """A stable key from its parts; long keys are hashed to fit the column."""
    key = ":".join(str(p) for p in parts)
    return key if len(key) <= 300 else key[:200] + ":" + hashlib.sha256(key.encode()).hexdigest()


def submit(
    ctx: Runtime,
    *,
    key: str,
    kind: str,
    payload: dict[str, Any],
    installation_id: int | None,
    replace: bool = False,
    retry_failed: bool = False,
    version: int | None = None,
) -> EffectState:
    """Record the intended effect (once per key), then carry it out now if nobody else is.

    `replace`: a newer desired state for the same key (ignored when its `version` is older
    than the stored one). `retry_failed`: try again an effect that failed for good before.
    """
    assert kind in _KINDS, f"unknown effect kind {kind}"
    _record(
        ctx.store,
        now=ctx.clock.now(),
        key=key,
        kind=kind,
        payload=payload,
        installation_id=installation_id,
        replace=replace,
        retry_failed=retry_failed,
        version=version,
    )
    return drive(ctx, key)


def drive(ctx: Runtime, key: str) -> EffectState:
    """Run the effect while it is due and this process can lease it; return where it stands."""
    failures = 0
    for _ in range(10):  # a bound even if other replicas keep replacing the payload
        row = _claim(ctx.store, now=ctx.clock.now(), key=key)
        if row is None:
            break
        if not _run(ctx, row):
            failures += 1
            if failures >= INLINE_FAILURES:
                break
    return state_of(ctx.store, key)


def drain(ctx: Runtime, *, limit: int = 50) -> int:
    """The tick: carry out due effects left pending by transient failures or dead workers."""
    kinds = [k.name for k in _KINDS.values() if k.background_retry]
    handled = 0
    while handled < limit:
        row = _claim(ctx.store, now=ctx.clock.now(), kinds=kinds)
        if row is None:
            break
        _run(ctx, row)
        handled += 1
    return handled


def state_of(store: Store, key: str) -> EffectState:
    with store.session() as session:
        row = session.scalar(select(OutboxEffect).where(OutboxEffect.effect_key == key))
        if row is None:
            return EffectState(EffectStatus.PENDING)
        return EffectState(EffectStatus(row.status), dict(row.result or {}))


def result_of(store: Store, key: str) -> dict[str, Any] | None:
    """What the effect's runs learnt so far (e.g. the comment id), or None if never recorded."""
    with store.session() as session:
        row = session.scalar(select(OutboxEffect).where(OutboxEffect.effect_key == key))
        return None if row is None else dict(row.result or {})


def unfinished_count(store: Store) -> int:
    """Effects not yet done nor given up (tests wait for zero; operators watch it)."""
    with store.session() as session:
        rows = session.scalars(
            select(OutboxEffect.id).where(
                OutboxEffect.status.in_([EffectStatus.PENDING.value, EffectStatus.RUNNING.value])
            )
        )
        return len(list(rows))


# -- the table --------------------------------------------------------------------------------


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _record(
    store: Store,
    *,
    now: datetime,
    key: str,
    kind: str,
    payload: dict[str, Any],
    installation_id: int | None,
    replace: bool,
    retry_failed: bool,
    version: int | None,
) -> None:
    digest = _digest(payload)
    try:
        with store.session() as session:
            session.add(
                OutboxEffect(
                    effect_key=key,
                    kind=kind,
                    installation_id=installation_id,
                    payload=payload,
                    payload_sha256=digest,
                    revision=1,
                    version=version,
                    status=EffectStatus.PENDING.value,
                    attempts=0,
                    result={},
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        return
    except IntegrityError:
        pass  # recorded before: by us earlier, by a redelivery, or by another replica
    running = OutboxEffect.status == EffectStatus.RUNNING.value
    with store.session() as session:
        if replace:
            # One statement, so a concurrent finish sees either the old or the new revision.
            newer = update(OutboxEffect).where(
                OutboxEffect.effect_key == key, OutboxEffect.payload_sha256 != digest
            )
            if version is not None:
                newer = newer.where(
                    or_(OutboxEffect.version.is_(None), OutboxEffect.version <= version)
                )
            session.execute(
                newer.values(
                    payload=payload,
                    version=version,
                    payload_sha256=digest,
                    revision=OutboxEffect.revision + 1,
                    status=case((running, EffectStatus.RUNNING.value), else_="pending"),
                    attempts=case((running, OutboxEffect.attempts), else_=0),
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
        if retry_failed:
            session.execute(
                update(OutboxEffect)
                .where(
                    OutboxEffect.effect_key == key,
                    OutboxEffect.status == EffectStatus.FAILED.value,
                )
                .values(status=EffectStatus.PENDING.value, next_attempt_at=now, updated_at=now)
            )


def _due(now: datetime) -> Any:
    return or_(
        and_(
            OutboxEffect.status == EffectStatus.PENDING.value,
            OutboxEffect.next_attempt_at <= now,
        ),
        and_(OutboxEffect.status == EffectStatus.RUNNING.value, OutboxEffect.lease_until <= now),
    )


def _claim(
    store: Store, *, now: datetime, key: str | None = None, kinds: list[str] | None = None
) -> OutboxEffect | None:
    """Lease one due effect (this key, or the oldest of these kinds) — SKIP LOCKED on PostgreSQL."""
    due = _due(now)
    with store.session() as session:
        query = select(OutboxEffect.id).where(due)
        if key is not None:
            query = query.where(OutboxEffect.effect_key == key)
        else:
            query = query.where(OutboxEffect.kind.in_(kinds or []))
        query = query.order_by(OutboxEffect.next_attempt_at, OutboxEffect.id).limit(1)
        if store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        pk = session.scalar(query)
        if pk is None:
            return None
        claimed = session.execute(
            update(OutboxEffect)
            .where(OutboxEffect.id == pk, due)
            .values(
                status=EffectStatus.RUNNING.value,
                lease_until=now + LEASE,
                attempts=OutboxEffect.attempts + 1,
                updated_at=now,
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(OutboxEffect, pk)
        assert row is not None
        session.expunge(row)
        return row


def _run(ctx: Runtime, row: OutboxEffect) -> bool:
    """One attempt at a leased effect; True when it is done."""
    kind = _KINDS.get(row.kind)
    now = ctx.clock.now
    if kind is None:
        _failed(ctx.store, row, {"error_message": "unknown kind"}, now=now(), transient=False)
        return False
    attempt = Attempt(
        rt=ctx,
        installation_id=row.installation_id,
        payload=dict(row.payload),
        result=dict(row.result or {}),
        attempt=row.attempts,
    )
    try:
        result = kind.run(attempt)
    except EffectRefused as exc:
        error = {"error_status": exc.status, "error_message": exc.message[:500]}
        _failed(ctx.store, row, {**attempt.result, **error}, now=now(), transient=False)
        return False
    except GitHubError as exc:
        error = {"error_status": exc.status, "error_message": exc.github_message[:500]}
        transient = is_transient(exc)
        _failed(ctx.store, row, {**attempt.result, **error}, now=now(), transient=transient)
        return False
    except Exception as exc:  # a lost answer from Slack, a bug: keep it, retry with back-off
        log.warning("effect %s (%s) failed: %s", row.effect_key, row.kind, type(exc).__name__)
        error = {"error_status": 0, "error_message": type(exc).__name__}
        _failed(ctx.store, row, {**attempt.result, **error}, now=now(), transient=True)
        return False
    _succeeded(ctx.store, row, result, now=now())
    return True


def is_transient(exc: GitHubError) -> bool:
    """No answer, a server error or a rate limit: trying again later may work."""
    limited = exc.status == 403 and "rate limit" in exc.github_message.lower()
    return exc.status == 0 or exc.status == 429 or exc.status >= 500 or limited


def _succeeded(store: Store, row: OutboxEffect, result: dict[str, Any], *, now: datetime) -> None:
    clean = {k: v for k, v in result.items() if k not in ("error_status", "error_message")}
    with store.session() as session:
        done = session.execute(
            update(OutboxEffect)
            .where(OutboxEffect.id == row.id, OutboxEffect.revision == row.revision)
            .values(
                status=EffectStatus.DONE.value,
                result=clean,
                error=None,
                lease_until=None,
                updated_at=now,
            )
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            return
    with store.session() as session:  # a newer payload arrived meanwhile: apply it next
        session.execute(
            update(OutboxEffect)
            .where(OutboxEffect.id == row.id)
            .values(
                status=EffectStatus.PENDING.value,
                result=clean,
                lease_until=None,
                next_attempt_at=now,
                updated_at=now,
            )
        )


def _failed(
    store: Store, row: OutboxEffect, result: dict[str, Any], *, now: datetime, transient: bool
) -> None:
    kind = _KINDS.get(row.kind)
    give_up = not transient or row.attempts >= MAX_ATTEMPTS
    if kind is not None and not kind.background_retry:
        delay = 0.0  # its caller decides when to try again
    else:
        # The first retry is at once (it checks whether the failed try took effect); then back off.
        steps = row.attempts - 2
        delay = 0.0 if steps < 0 else min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**steps)
    message = str(result.get("error_message") or "")
    with store.session() as session:
        current = session.get(OutboxEffect, row.id)
        if current is None:
            return
        newer = current.revision != row.revision
        current.result = result
        current.error = f"{result.get('error_status')}: {message}"[:2000]
        current.lease_until = None
        current.updated_at = now
        if newer:  # the failed payload is superseded: try the newest one now
            current.status = EffectStatus.PENDING.value
            current.next_attempt_at = now
        elif give_up:
            current.status = EffectStatus.FAILED.value
        else:
            current.status = EffectStatus.PENDING.value
            current.next_attempt_at = now + timedelta(seconds=delay)
    if give_up:
        log.warning("effect %s (%s) gave up: %s", row.effect_key, row.kind, message[:200])
