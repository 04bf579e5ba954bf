"""Slack ChatOps end to end over HTTP: slash commands, buttons, the modal, the live message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.sandbox.slack.state import Message
from tests.bot_harness import wait_until
from tests.slack_world import ALICE, MALLORY, SlackRig, start_slack_world

GATE = "Shipyard / promotion-gate"


@pytest.fixture
def rig(world: RegistryWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackRig]:
    # Model outputs are content-addressed; sharing them across tests only saves time.
    rig = start_slack_world(world, cache_dir=tmp_path_factory.getbasetemp() / "prediction-cache")
    try:
        yield rig
    finally:
        rig.close()


def gate(world: RegistryWorld, number: int, conclusion: str) -> Any:
    def settled() -> Any:
        run = world.sandbox.check_run_named(REGISTRY, world.head_sha(number), GATE)
        return run if run is not None and run.conclusion == conclusion else None

    return wait_until(settled, timeout_s=90, what=f"the promotion gate to be {conclusion}")


def answer(rig: SlackRig, response_url: str | None) -> str:
    """The ephemeral answer posted to a response_url."""
    assert response_url is not None
    said = wait_until(lambda: rig.slack.said_to(response_url), what="the ephemeral answer")
    assert len(said) == 1, said
    return str(said[0])


def slack_comments(world: RegistryWorld, number: int) -> list[str]:
    return [c.body for c in world.sandbox.comments_on(REGISTRY, number) if "from Slack" in c.body]


def docs_pr(world: RegistryWorld) -> int:
    """A PR that touches no model: enough to name in a command, nothing to evaluate."""
    world.sandbox.commit(REGISTRY, "docs", {"README.md": b"# Registry\n"}, message="docs")
    return world.sandbox.open_pull(REGISTRY, "docs", "main", "Docs", "data-scientist")


def verdict(message: Message) -> str:
    return str(next(b["text"]["text"] for b in message.blocks if "Verdict" in str(b)))


def test_a_signed_slash_command_approves_and_the_message_is_edited_after_a_restart(
    rig: SlackRig,
) -> None:
    world = rig.world
    number = world.open_candidate_pr("candidate_segment_regression")
    gate(world, number, "action_required")
    first = rig.the_message(containing="Needs review")
    assert f"{REGISTRY}#{number}" in first.text
    assert "entity_type=public_sector" not in verdict(first)  # headline, not the whole summary

    rig.restart_bot()  # the message's ts is in the database: the bot edits it, never reposts
    sent = rig.people.slash(ALICE, "/shipyard", f"approve {REGISTRY}#{number} trade-off is ok")
    assert sent.response.status_code == 200
    assert sent.response.elapsed < timedelta(seconds=3)  # acknowledged; the work comes after
    assert "Approved" in answer(rig, sent.response_url)
    gate(world, number, "success")

    message = rig.the_message(containing="✅")
    assert message.ts == first.ts and len(rig.channel_messages()) == 1
    comments = wait_until(lambda: slack_comments(world, number), what="the PR comment")
    sha = world.head_sha(number)[:7]
    assert len(comments) == 1
    assert comments[0].startswith(
        f"`lead-ml` acted from Slack: `/approve trade-off is ok` — Approved `{sha}`"
    )
    assert "@lead-ml" not in comments[0]
    status = rig.people.slash(ALICE, "/shipyard", f"status {REGISTRY}#{number}")
    trail = answer(rig, status.response_url)
    assert "`lead-ml` approved" in trail and "*Gate for" in trail


def test_the_buttons_approve_and_block_through_the_same_rules(rig: SlackRig) -> None:
    world = rig.world
    number = world.open_candidate_pr("candidate_segment_regression")
    gate(world, number, "action_required")
    message = rig.the_message(containing="Needs review")

    unlinked = rig.people.click(MALLORY, message, "shipyard_approve")
    assert "not linked" in answer(rig, unlinked.response_url)
    clicked = rig.people.click(ALICE, message, "shipyard_approve")
    assert "Approved" in answer(rig, clicked.response_url)
    gate(world, number, "success")

    rig.people.click(ALICE, rig.the_message(containing="✅"), "shipyard_block")
    view_id = wait_until(lambda: list(rig.slack.views), what="the block modal")[0]
    empty = rig.people.submit(ALICE, view_id, {"reason": {"reason_input": "   "}})
    assert empty.response.json()["response_action"] == "errors"
    done = rig.people.submit(ALICE, view_id, {"reason": {"reason_input": "holiday freeze"}})
    assert done.response.status_code == 200
    assert "holiday freeze" in gate(world, number, "failure").output["title"]

    blocked = rig.the_message(containing="holiday freeze")
    assert blocked.ts == message.ts and len(rig.channel_messages()) == 1
    assert verdict(blocked).startswith("*Verdict:* ❌")
    told = wait_until(lambda: rig.slack.ephemerals, what="the answer to the modal")
    assert told[0].user == ALICE.user_id and "Blocked" in told[0].text
    comments = wait_until(
        lambda: len(slack_comments(world, number)) == 2 and slack_comments(world, number),
        what="both PR comments",
    )
    assert "Approved" in comments[0] and "Blocked: holiday freeze" in comments[1]


def push_to(world: RegistryWorld, number: int) -> str:
    """The author pushes a new head; returns it once the gate has been decided for it."""
    world.sandbox.push(
        REGISTRY,
        world.sandbox.pull(REGISTRY, number).head_ref,
        {"models/churn/CHANGELOG.md": b"# churn\n\nSomething else.\n"},
        author="data-scientist",
    )
    gate(world, number, "action_required")
    return world.head_sha(number)


def test_a_slash_approve_sent_before_a_push_is_refused_even_when_handled_after_it(
    rig: SlackRig,
) -> None:
    world = rig.world
    number = world.open_candidate_pr("candidate_segment_regression")
    first = world.head_sha(number)
    gate(world, number, "action_required")
    world.pass_time(timedelta(minutes=5))

    # Alice sends the command at T while head A is shown; Slack is slow to deliver it.
    body, response_url = rig.people.slash_body(ALICE, "/shipyard", f"approve {REGISTRY}#{number}")
    signed = int(world.clock.now().timestamp())
    world.clock.advance(timedelta(seconds=1))
    second = push_to(world, number)  # head B at T+1, handled first
    assert second != first
    assert rig.people.post(body, timestamp=signed).status_code == 200

    told = answer(rig, response_url)
    assert "Not approved" in told and "approve again" in told
    assert f"`{first[:7]}` to `{second[:7]}`" in told
    assert (
        f"0 of 1 required approval for {second[:7]}"
        in gate(world, number, "action_required").output["summary"]
    )
    assert slack_comments(world, number) == []

    world.pass_time(timedelta(minutes=1))  # she looks at B, then approves it
    again = rig.people.slash(ALICE, "/shipyard", f"approve {REGISTRY}#{number}")
    assert "Approved" in answer(rig, again.response_url)
    gate(world, number, "success")


def test_the_approve_button_of_a_message_about_an_old_head_approves_nothing(
    rig: SlackRig,
) -> None:
    world = rig.world
    number = world.open_candidate_pr("candidate_segment_regression")
    first = world.head_sha(number)
    gate(world, number, "action_required")
    shown = rig.the_message(containing=first[:7])  # the message Alice has open
    world.pass_time(timedelta(minutes=5))
    second = push_to(world, number)

    clicked = rig.people.click(ALICE, shown, "shipyard_approve")
    told = answer(rig, clicked.response_url)
    assert "Not approved" in told and f"this message is about `{first[:7]}`" in told
    assert (
        f"0 of 1 required approval for {second[:7]}"
        in gate(world, number, "action_required").output["summary"]
    )
    assert slack_comments(world, number) == []


def test_an_unlinked_user_is_told_how_to_link_and_nothing_else_happens(rig: SlackRig) -> None:
    number = docs_pr(rig.world)
    sent = rig.people.slash(MALLORY, "/block", f"{REGISTRY}#{number} I say so")
    told = answer(rig, sent.response_url)
    assert '"T0TEAM:U0MALLORY": your-github-login' in told
    assert "`.shipyard.yml` on `main`" in told
    assert slack_comments(rig.world, number) == []


def _unsigned(rig: SlackRig, body: bytes) -> int:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return httpx.post(rig.people.events_url, content=body, headers=headers).status_code


def _other_secret(rig: SlackRig, body: bytes) -> int:
    from bot.sandbox.slack.signing import sign

    now = str(int(rig.world.clock.now().timestamp()))
    forged = sign("not-the-secret", timestamp=now, body=body)
    return rig.people.post(body, headers={"X-Slack-Signature": forged}).status_code


def _six_minutes_old(rig: SlackRig, body: bytes) -> int:
    then = int((rig.world.clock.now() - timedelta(minutes=6)).timestamp())
    return rig.people.post(body, timestamp=then).status_code


def _stale_by_the_time_it_arrives(rig: SlackRig, body: bytes) -> int:
    then = int(rig.world.clock.now().timestamp())
    rig.world.pass_time(timedelta(minutes=5, seconds=1))
    return rig.people.post(body, timestamp=then).status_code


@pytest.mark.parametrize(
    "send, status",
    [
        (_unsigned, 401),
        (_other_secret, 401),
        (_six_minutes_old, 401),
        (_stale_by_the_time_it_arrives, 401),
    ],
    ids=[
        "an unsigned command is refused",
        "a command signed with another secret is refused",
        "a command signed six minutes ago is refused",
        "a command that ages past five minutes on the bot's clock is refused",
    ],
)
def test_a_command_slack_did_not_sign_just_now_does_nothing(
    rig: SlackRig, send: Any, status: int
) -> None:
    number = docs_pr(rig.world)
    body, response_url = rig.people.slash_body(ALICE, "/shipyard", f"status {REGISTRY}#{number}")
    assert send(rig, body) == status
    barrier = rig.people.slash(ALICE, "/shipyard", f"status {REGISTRY}#{number}")
    answer(rig, barrier.response_url)  # a signed command behind it has been answered
    assert rig.slack.said_to(response_url) == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}],
    ids=["a replayed command runs once", "a command Slack retries runs once"],
)
def test_a_repeated_command_runs_once(rig: SlackRig, headers: dict[str, str]) -> None:
    number = docs_pr(rig.world)
    sent = rig.people.slash(ALICE, "/shipyard", f"status {REGISTRY}#{number}")
    rig.world.clock.advance(timedelta(seconds=2))  # a retry is signed again, a bit later
    again = rig.people.post(sent.body, headers=headers)
    assert again.status_code == 200 and again.content == b""
    answer(rig, sent.response_url)
    barrier = rig.people.slash(ALICE, "/shipyard", f"status {REGISTRY}#{number}")
    answer(rig, barrier.response_url)
    assert len(rig.slack.said_to(str(sent.response_url))) == 1


def test_help_and_mistakes_are_answered_at_once(rig: SlackRig) -> None:
    help_text = rig.people.slash(ALICE, "/shipyard", "help").response.text
    assert "`/block &lt;reason&gt;`" in help_text
    assert "Name the pull request" in rig.people.slash(ALICE, "/approve", "").response.text
    unknown = rig.people.slash(ALICE, "/shipyard", "deploy x/y#1").response.text
    assert "`deploy` is not a Shipyard command" in unknown


def test_a_slash_command_acknowledged_just_before_a_crash_is_carried_out_after_restart(
    rig: SlackRig,
) -> None:
    world = rig.world
    number = world.open_candidate_pr("candidate_segment_regression")
    gate(world, number, "action_required")
    rig.the_message(containing="Needs review")
    rig._stop_bot()
    world.start_bot(run_workers=False, **rig.bot_settings)  # acknowledges, handles nothing
    assert world.bot is not None
    rig.people.events_url = f"{world.bot.url}/slack/events"
    sent = rig.people.slash(ALICE, "/shipyard", f"approve {REGISTRY}#{number}")
    assert sent.response.status_code == 200
    rig.restart_bot()  # the "crash" loses nothing: the command was stored before the ack
    gate(world, number, "success")
    assert "Approved" in answer(rig, sent.response_url)
