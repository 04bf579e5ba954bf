"""Paging on-call through PagerDuty's Events API v2, over real HTTP against the loopback double,
with the bot's real store (SQLite and PostgreSQL) and outbox, on an injected clock.

What a person would see: one incident per page however often an answer is lost, the incident
acknowledged and resolved when the bot says so, a refused page visible as failed with
PagerDuty's reason, and the routing key nowhere but in the requests to PagerDuty.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.base.clock import ManualClock
from bot.base.local_server import free_port
from bot.base.settings import Settings
from bot.paging import events, page_effect
from bot.paging.events import Link, Page
from bot.paging.pagerduty import PagerDutyEvents, PageRefused
from bot.runtime import outbox
from bot.sandbox.pagerduty import PagerDutySandboxServer, PagerDutyState
from bot.store.db import Store, open_store
from bot.store.models import EffectStatus, OutboxEffect

ROUTING_KEY = secrets.token_hex(16)  # 32 alphanumeric characters, new every run


@dataclass(frozen=True)
class _Runtime:
    """What the scheduler tick hands the outbox: store, clock and settings; no GitHub here."""

    store: Store
    clock: ManualClock
    settings: Settings

    @property
    def github(self) -> outbox.Installations:
        raise AssertionError("paging never calls GitHub")


@pytest.fixture(scope="module")
def pagerduty() -> Iterator[PagerDutySandboxServer]:
    with PagerDutySandboxServer(PagerDutyState(ROUTING_KEY)) as server:
        yield server


@pytest.fixture
def pd(pagerduty: PagerDutySandboxServer) -> PagerDutySandboxServer:
    pagerduty.reset()
    return pagerduty


@pytest.fixture
def world(
    database_url: str, make_settings: Callable[..., Settings], pd: PagerDutySandboxServer
) -> Iterator[_Runtime]:
    store = open_store(database_url)
    settings = make_settings(
        pagerduty_events_url=pd.url, pagerduty_routing_key=ROUTING_KEY, database_url=database_url
    )
    try:
        yield _Runtime(store=store, clock=ManualClock(), settings=settings)
    finally:
        store.engine.dispose()


def _page(key: str = "rollout-42:fraud-model:1", **overrides: Any) -> Page:
    values: dict[str, Any] = {
        "dedup_key": key,
        "summary": "fraud-model canary rolled back: error rate 4.1% vs 0.3% in production",
        "source": "shipyard",
        "severity": "critical",
        "custom_details": {"model": "fraud-model", "step": "5%", "error_rate": 0.041},
        "links": (Link(href="https://github.example/acme/registry/pull/42", text="PR #42"),),
        "timestamp": datetime(2026, 12, 5, 23, 40, tzinfo=UTC),
    }
    values.update(overrides)
    return Page(**values)


def _tick(rt: _Runtime, *, after: timedelta = timedelta(minutes=1)) -> None:
    """Time passes past the back-off, then the scheduler tick runs the outbox."""
    rt.clock.advance(after)
    outbox.drain(rt)


def _state(rt: _Runtime, key: str) -> outbox.EffectState:
    found = page_effect.state(rt.store, key)
    assert found is not None, f"no trigger recorded for {key}"
    return found


# -- paging ------------------------------------------------------------------------------------


def test_a_trigger_opens_one_incident_that_shows_the_page(world: _Runtime, pd: Any) -> None:
    state = page_effect.trigger(world, world.settings, _page())
    assert state.done and state.result["dedup_key"] == "rollout-42:fraud-model:1"
    [incident] = pd.incidents()
    assert incident["status"] == "triggered"
    assert incident["summary"].startswith("fraud-model canary rolled back")
    assert incident["severity"] == "critical" and incident["source"] == "shipyard"
    assert incident["custom_details"] == {
        "model": "fraud-model",
        "step": "5%",
        "error_rate": 0.041,
    }
    assert incident["events"][0]["payload"]["timestamp"] == "2026-12-05T23:40:00+00:00"
    assert incident["links"] == [
        {"href": "https://github.example/acme/registry/pull/42", "text": "PR #42"}
    ]


def test_the_same_page_asked_for_again_is_not_sent_again(world: _Runtime, pd: Any) -> None:
    page_effect.trigger(world, world.settings, _page())
    again = page_effect.trigger(world, world.settings, _page(summary="asked again"))
    assert again.done
    assert pd.received() == 1 and len(pd.incidents()) == 1


@pytest.mark.parametrize("fault", ["process_then_drop", "process_then_502"])
def test_a_trigger_whose_answer_was_lost_is_retried_and_still_opens_one_incident(
    world: _Runtime, pd: Any, fault: str
) -> None:
    pd.arm(fault, times=2)  # both tries made at once are processed, and their answers lost
    state = page_effect.trigger(world, world.settings, _page())
    assert state.status is EffectStatus.PENDING
    outbox.drain(world)
    assert pd.received() == 2  # nothing more before the back-off has passed
    _tick(world)
    assert _state(world, "rollout-42:fraud-model:1").done
    [incident] = pd.incidents()
    assert incident["status"] == "triggered" and len(incident["events"]) == 3
    _tick(world, after=timedelta(hours=1))
    page_effect.trigger(world, world.settings, _page())
    assert pd.received() == 3  # done is done: neither the tick nor a new call sends it again


def test_a_rate_limited_page_is_delivered_when_pagerduty_takes_it(world: _Runtime, pd: Any) -> None:
    pd.arm("429")
    state = page_effect.trigger(world, world.settings, _page())
    assert state.done  # the outbox's second try at once
    assert len(pd.incidents()) == 1 and pd.received() == 2


def test_server_errors_leave_the_page_to_the_tick_which_delivers_it(
    world: _Runtime, pd: Any
) -> None:
    pd.arm("500", times=3)
    assert page_effect.trigger(world, world.settings, _page()).status is EffectStatus.PENDING
    assert pd.incidents() == []
    _tick(world)  # the third try meets the third 500
    assert pd.incidents() == []
    _tick(world)
    assert _state(world, "rollout-42:fraud-model:1").done
    assert len(pd.incidents()) == 1


def test_an_unreachable_pagerduty_leaves_the_page_pending_until_it_answers(
    world: _Runtime, pd: Any, make_settings: Callable[..., Settings]
) -> None:
    unreachable = make_settings(
        pagerduty_events_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        pagerduty_routing_key=ROUTING_KEY,
        database_url=world.settings.database_url,
    )
    state = page_effect.trigger(world, unreachable, _page())
    assert state.status is EffectStatus.PENDING and state.error_status == 0
    # PagerDuty is back (the operator's settings, which the tick reads, point at it): delivered.
    _tick(world)
    assert _state(world, "rollout-42:fraud-model:1").done and len(pd.incidents()) == 1


def test_a_refused_page_fails_for_good_with_pagerdutys_reason_and_no_key(
    world: _Runtime, pd: Any, make_settings: Callable[..., Settings]
) -> None:
    other_key = secrets.token_hex(16)  # well-formed, but no integration has it
    settings = make_settings(
        pagerduty_events_url=pd.url,
        pagerduty_routing_key=other_key,
        database_url=world.settings.database_url,
    )
    state = page_effect.trigger(world, settings, _page())
    assert state.status is EffectStatus.FAILED and state.error_status == 400
    assert state.error_message == "PagerDuty refused the event (400): Invalid routing key"
    assert other_key not in json.dumps(state.result)
    _tick(world, after=timedelta(hours=2))
    assert pd.received() == 1 and pd.incidents() == []  # a 400 is never sent again


def test_acknowledge_then_resolve_change_the_incident(world: _Runtime, pd: Any) -> None:
    key = "rollout-42:fraud-model:1"
    page_effect.trigger(world, world.settings, _page(key))
    assert page_effect.acknowledge(world, world.settings, key).done
    assert pd.incidents()[0]["status"] == "acknowledged"
    assert page_effect.resolve(world, world.settings, key).done
    assert pd.incidents()[0]["status"] == "resolved"
    # A new trigger with a new key opens a new incident; the resolved one stays resolved.
    page_effect.trigger(world, world.settings, _page("rollout-42:fraud-model:2"))
    assert [i["status"] for i in pd.incidents()] == ["resolved", "triggered"]


def test_a_resolve_asked_for_before_its_trigger_is_delivered_waits_for_it(
    world: _Runtime, pd: Any
) -> None:
    key = "rollout-42:fraud-model:1"
    pd.arm("500", times=2)
    assert page_effect.trigger(world, world.settings, _page(key)).status is EffectStatus.PENDING
    assert page_effect.resolve(world, world.settings, key).status is EffectStatus.PENDING
    assert pd.received() == 2  # only the trigger's two tries: the resolve was not sent
    _tick(world)
    [incident] = pd.incidents()
    assert incident["status"] == "resolved"
    assert [e["event_action"] for e in incident["events"]] == ["trigger", "resolve"]


def test_a_resolve_of_a_refused_trigger_is_not_sent(
    world: _Runtime, pd: Any, make_settings: Callable[..., Settings]
) -> None:
    wrong = make_settings(
        pagerduty_events_url=pd.url,
        pagerduty_routing_key=secrets.token_hex(16),
        database_url=world.settings.database_url,
    )
    key = "rollout-42:fraud-model:1"
    assert page_effect.trigger(world, wrong, _page(key)).status is EffectStatus.FAILED
    state = page_effect.resolve(world, world.settings, key)
    assert state.done and state.result["skipped"] == "never triggered"
    assert pd.received() == 1


def test_a_page_that_gave_up_during_a_long_outage_is_sent_when_asked_for_again(
    world: _Runtime, pd: Any
) -> None:
    key = "rollout-42:fraud-model:1"
    pd.arm("500", times=outbox.MAX_ATTEMPTS)
    page_effect.trigger(world, world.settings, _page(key))
    for _ in range(outbox.MAX_ATTEMPTS):
        _tick(world, after=timedelta(minutes=20))
    gave_up = _state(world, key)
    assert gave_up.status is EffectStatus.FAILED and gave_up.error_status == 0
    assert page_effect.resolve(world, world.settings, key).status is EffectStatus.PENDING
    assert pd.incidents() == []
    # PagerDuty is back; the rollout's next visit asks for the page again, then the tick runs.
    assert page_effect.trigger(world, world.settings, _page(key)).done
    _tick(world)
    [incident] = pd.incidents()
    assert incident["status"] == "resolved"


def test_an_acknowledge_after_the_resolve_is_not_sent(world: _Runtime, pd: Any) -> None:
    key = "rollout-42:fraud-model:1"
    page_effect.trigger(world, world.settings, _page(key))
    page_effect.resolve(world, world.settings, key)
    state = page_effect.acknowledge(world, world.settings, key)
    assert state.done and state.result["skipped"] == "already resolved"
    assert pd.received() == 2


def test_without_a_routing_key_nothing_is_sent_and_the_caller_can_say_so(
    world: _Runtime, pd: Any, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(pagerduty_events_url=pd.url)
    state = page_effect.trigger(world, settings, _page())
    assert page_effect.not_configured(state) and not state.done
    assert state.error_message == page_effect.NOT_CONFIGURED_MESSAGE
    assert page_effect.resolve(world, settings, "rollout-42:fraud-model:1").status is (
        EffectStatus.FAILED
    )
    assert pd.received() == 0
    assert page_effect.state(world.store, "rollout-42:fraud-model:1") is None


def test_the_routing_key_is_never_logged_nor_stored(
    world: _Runtime, pd: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pd.arm("process_then_drop")
    pd.arm("500")
    page_effect.trigger(world, world.settings, _page("a"))
    pd.arm("429", times=2)
    page_effect.trigger(world, world.settings, _page("b"))
    _tick(world)
    page_effect.resolve(world, world.settings, "a")
    raw = httpx.post(  # a refused event, to see what its failure shows
        f"{pd.url}/v2/enqueue",
        json={"routing_key": ROUTING_KEY, "event_action": "resolve"},
        timeout=10,
    )
    assert raw.status_code == 400
    assert ROUTING_KEY not in caplog.text
    with world.store.session() as session:
        rows = list(session.scalars(select(OutboxEffect)))
    assert len(rows) == 3 and all(row.status == "done" for row in rows)
    for row in rows:
        stored = json.dumps([row.payload, row.result, row.error, row.effect_key])
        assert ROUTING_KEY not in stored


# -- the client and the bodies -----------------------------------------------------------------


def test_a_refused_event_raises_with_pagerdutys_reasons_but_never_the_key(pd: Any) -> None:
    pager = PagerDutyEvents(pd.url, SecretStr(ROUTING_KEY))
    with pytest.raises(PageRefused) as refused:
        pager.send(
            {
                "event_action": "trigger",
                "dedup_key": "k",
                "payload": {"summary": "x" * 1025, "source": "s", "severity": "critical"},
            }
        )
    assert refused.value.status == 400
    assert refused.value.errors == ("'summary' is too long (maiximum is 1024 characters)",)
    assert ROUTING_KEY not in str(refused.value) and "xxxx" not in str(refused.value)


def test_the_bodies_fit_pagerdutys_limits_whatever_the_page_holds(pd: Any) -> None:
    long_key = "rollout:" + "m" * 400
    page = _page(
        long_key,
        summary="line one\nline two\x00 " + "s" * 3000,
        custom_details={
            "log": "L" * 100_000,
            **{f"segment_{i}": "v" * 3_900 for i in range(45)},
            "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}},
        },
        links=(Link(href="javascript:alert(1)", text="x"), Link(href="https://ok.example/")),
    )
    body = events.trigger_event(page)
    assert body["dedup_key"] == events.dedup_key(long_key)  # the same key every time
    assert len(body["dedup_key"]) == 255
    assert events.dedup_key(long_key + "x") != body["dedup_key"]
    summary = body["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…") and "\x00" not in summary
    details = body["payload"]["custom_details"]
    assert len(details["log"]) == events.MAX_DETAIL_STRING
    assert details["deep"]["a"]["b"] == {"c": "(omitted: nested too deep)"}
    assert details[events.TRUNCATED_FIELD][:1] == ["log"]
    assert body["links"] == [{"href": "https://ok.example/"}]
    assert events.event_bytes(body) <= events.MAX_EVENT_BYTES
    assert PagerDutyEvents(pd.url, SecretStr(ROUTING_KEY)).send(body) == body["dedup_key"]


def test_details_too_large_for_one_event_are_left_out_largest_first() -> None:
    details = {f"k{i}": ["x" * 3_999] * 40 for i in range(10)}  # ~1.6 MB after bounding
    body = events.trigger_event(_page(custom_details={"small": 1, **details}))
    fitted = body["payload"]["custom_details"]
    assert events.event_bytes(body) <= events.MAX_EVENT_BYTES
    assert fitted["small"] == 1
    left_out = [k for k, v in fitted.items() if str(v).startswith("(omitted")]
    assert left_out and set(left_out) <= set(fitted[events.TRUNCATED_FIELD])


# -- the double answers like PagerDuty ---------------------------------------------------------


def _trigger(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "k",
        "payload": {"summary": "s", "source": "host", "severity": "error"},
    }
    for path, value in changes.items():
        target = event
        *parents, last = path.split("__")
        for name in parents:
            target = target[name]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return event


_DELETE = object()


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (_trigger(payload__source=_DELETE), "'source' is missing or blank"),
        (
            _trigger(payload__severity="fatal"),
            "'severity' is invalid (must be one of critical, error, warning, info)",
        ),
        (_trigger(dedup_key="d" * 256), "'dedup_key' is too long (maximum is 255 characters)"),
        (
            _trigger(payload__summary="s" * 1025),
            "'summary' is too long (maiximum is 1024 characters)",
        ),
        (
            _trigger(routing_key="short"),
            "Length of 'routing_key' is incorrect (should be 32 characters)",
        ),
        (
            _trigger(routing_key="-" * 32),
            "'routing_key' cannot contain non-alphanumeric characters.",
        ),
        (_trigger(routing_key="a" * 32), "Invalid routing key"),
        (
            {"routing_key": ROUTING_KEY, "event_action": "resolve"},
            "'dedup_key' is missing or blank",
        ),
        (_trigger(payload__custom_details=["x"]), "'custom_details' must be an object"),
        (
            _trigger(links=[{"text": "no href"}]),
            "'links' items must be objects with a 'href' string",
        ),
    ],
    ids=[
        "a trigger without source",
        "a severity PagerDuty does not know",
        "a dedup_key longer than 255",
        "a summary longer than 1024",
        "a routing key of the wrong length",
        "a routing key with punctuation",
        "a routing key of no integration",
        "a resolve without dedup_key",
        "custom_details that is not an object",
        "a link without href",
    ],
)
def test_the_double_refuses_what_pagerduty_refuses(
    pd: Any, event: dict[str, Any], error: str
) -> None:
    answer = httpx.post(f"{pd.url}/v2/enqueue", json=event, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["status"] == "invalid event"
    assert error in answer.json()["errors"]
    assert pd.incidents() == []


def test_the_double_refuses_a_body_over_512_kb_before_reading_it(pd: Any) -> None:
    event = _trigger(payload__custom_details={"blob": "b" * 512_000})
    answer = httpx.post(f"{pd.url}/v2/enqueue", content=json.dumps(event).encode(), timeout=10)
    assert answer.status_code == 400
    assert answer.json()["errors"] == ["Event object is too large (maximum is 512 KB)"]
    not_json = httpx.post(f"{pd.url}/v2/enqueue", content=b"{not json", timeout=10)
    assert not_json.status_code == 400 and not_json.json()["errors"] == ["JSON parse error"]
    assert pd.incidents() == []


def test_the_double_dedups_like_pagerduty(pd: Any) -> None:
    def send(event: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{pd.url}/v2/enqueue", json=event, timeout=10)

    first = send(_trigger(dedup_key=_DELETE))
    assert first.status_code == 202
    assert first.json()["status"] == "success" and first.json()["message"] == "Event processed"
    generated = first.json()["dedup_key"]
    assert send(_trigger(dedup_key=generated)).json()["dedup_key"] == generated
    assert (
        send(
            {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "none"}
        ).status_code
        == 202
    )
    send({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": generated})
    send(_trigger(dedup_key=generated))  # after resolve: a new incident
    incidents = pd.incidents()
    assert [(i["dedup_key"], i["status"], len(i["events"])) for i in incidents] == [
        (generated, "resolved", 3),
        (generated, "triggered", 1),
    ]
