"""Paging on-call as outbox effects: every trigger, acknowledge and resolve sent exactly once.

One one-shot effect per (dedup_key, action), keyed `page:<dedup_key>:<action>`. The row is the
claim: a retried visit, a redelivery or a second replica finds it and sends nothing more once it
is done. The stored payload is the event body without the routing key (the key is read from
the settings when the event is sent, so the secret never reaches the database).

Why sending again is safe when an answer was lost: PagerDuty de-duplicates on dedup_key. A
trigger whose key names an open alert only adds a log entry to it; acknowledge and resolve of
the same alert are idempotent, and for a key with no open alert they are dropped. So a trigger
that PagerDuty processed but whose answer never arrived is sent again and still leaves one
incident. (The one gap, which PagerDuty offers no way to check: a person resolving the incident
in PagerDuty between the lost answer and the retry; the retry then opens a new incident.)

Order: acknowledge and resolve of a key are sent only after its trigger is done. While the
trigger is pending (or gave up on transient failures, and may yet be asked for again) they raise
`EffectInDoubt` and the outbox retries them with back-off; when PagerDuty refused the trigger
there is no incident, and they finish without sending. Without a trigger recorded here (paged
by someone else) they are sent as they are; PagerDuty drops them when no alert is open.
An acknowledge whose resolve is already done is not sent (PagerDuty would drop it).

Paging is off when `SHIPYARD_PAGERDUTY_ROUTING_KEY` is unset: nothing is recorded or sent, and
the state returned is failed with `not_configured` (see `not_configured(state)`), so a caller
can say "paging is not configured" where it reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.base.clock import Clock
from bot.base.settings import Settings
from bot.paging import events
from bot.paging.events import Action, Page
from bot.paging.pagerduty import PageRefused, PagerUnavailable, pager_from
from bot.runtime import outbox
from bot.store.db import Store
from bot.store.models import EffectStatus

KIND = "page"
NOT_CONFIGURED_MESSAGE = "paging is not configured (SHIPYARD_PAGERDUTY_ROUTING_KEY is unset)"


def trigger(rt: outbox.Runtime, settings: Settings, page: Page) -> outbox.EffectState:
    """Page on-call with `page` (once per dedup_key); carried out now if it can be."""
    return _submit(rt, settings, "trigger", events.trigger_event(page))


def acknowledge(rt: outbox.Runtime, settings: Settings, dedup_key: str) -> outbox.EffectState:
    """Acknowledge the incident `dedup_key` names, after its trigger."""
    return _submit(rt, settings, "acknowledge", events.acknowledge_event(dedup_key))


def resolve(rt: outbox.Runtime, settings: Settings, dedup_key: str) -> outbox.EffectState:
    """Resolve the incident `dedup_key` names, after its trigger."""
    return _submit(rt, settings, "resolve", events.resolve_event(dedup_key))


def state(store: Store, dedup_key: str, action: Action = "trigger") -> outbox.EffectState | None:
    """Where the `action` of the page `dedup_key` stands, or None when it was never asked for."""
    key = effect_key(events.dedup_key(dedup_key), action)
    if outbox.result_of(store, key) is None:
        return None
    return outbox.state_of(store, key)


def not_configured(effect: outbox.EffectState) -> bool:
    """Whether `effect` is the answer of a call made while paging is off."""
    return bool(effect.result.get("not_configured"))


def effect_key(dedup_key: str, action: Action) -> str:
    return outbox.effect_key(KIND, dedup_key, action)


# -- carrying it out --------------------------------------------------------------------------


@dataclass(frozen=True)
class _WithSettings:
    """The caller's runtime, plus the settings the run reads the routing key from."""

    rt: outbox.Runtime
    settings: Settings

    @property
    def store(self) -> Store:
        return self.rt.store

    @property
    def clock(self) -> Clock:
        return self.rt.clock

    @property
    def github(self) -> outbox.Installations:
        return self.rt.github


def _submit(
    rt: outbox.Runtime, settings: Settings, action: Action, event: dict[str, Any]
) -> outbox.EffectState:
    if settings.pagerduty_routing_key is None:
        return outbox.EffectState(
            EffectStatus.FAILED,
            {"not_configured": True, "error_status": 0, "error_message": NOT_CONFIGURED_MESSAGE},
        )
    key = effect_key(event["dedup_key"], action)
    earlier = outbox.result_of(rt.store, key)
    # Asking again re-arms an effect that gave up on a transient failure (PagerDuty down for
    # longer than the outbox's retries); a refused event stays refused.
    retry = earlier is not None and _gave_up_transiently(outbox.state_of(rt.store, key))
    return outbox.submit(
        _WithSettings(rt, settings),
        key=key,
        kind=KIND,
        payload={"action": action, "event": event},
        installation_id=None,
        retry_failed=retry,
    )


def _gave_up_transiently(effect: outbox.EffectState) -> bool:
    status = effect.error_status or 0
    return effect.status is EffectStatus.FAILED and (status in (0, 429) or status >= 500)


def _settings_of(rt: outbox.Runtime) -> Settings:
    settings = getattr(rt, "settings", None)  # the BotContext in the tick, _WithSettings inline
    if not isinstance(settings, Settings):
        raise TypeError("a page effect needs a runtime with settings")
    return settings


def _run(attempt: outbox.Attempt) -> dict[str, Any]:
    action: Action = attempt.payload["action"]
    event: dict[str, Any] = attempt.payload["event"]
    dedup_key: str = event["dedup_key"]
    store = attempt.rt.store
    if action != "trigger":
        triggered = state(store, dedup_key, "trigger")
        if triggered is not None and triggered.status is EffectStatus.FAILED:
            if not _gave_up_transiently(triggered):  # refused: there is no incident to act on
                return {"action": action, "dedup_key": dedup_key, "skipped": "never triggered"}
            raise outbox.EffectInDoubt("the trigger of this page is not delivered yet")
        if triggered is not None and not triggered.done:
            raise outbox.EffectInDoubt("waiting for the trigger of this page")
    if action == "acknowledge":
        resolved = state(store, dedup_key, "resolve")
        if resolved is not None and resolved.done:
            return {"action": action, "dedup_key": dedup_key, "skipped": "already resolved"}
    pager = pager_from(_settings_of(attempt.rt))
    if pager is None:
        raise outbox.EffectRefused(0, NOT_CONFIGURED_MESSAGE)
    try:
        answered = pager.send(event)
    except PageRefused as exc:
        raise outbox.EffectRefused(exc.status, exc.message) from None
    except PagerUnavailable as exc:
        raise outbox.EffectInDoubt(exc.reason) from None
    return {
        "action": action,
        "dedup_key": answered,
        "sent_at": attempt.rt.clock.now().isoformat(),
    }


outbox.register(KIND, _run)
