"""The canary commands on a merged PR, over HTTP: /rollback, /pause, /resume, /promote, /ack in PR
comments, the Slack slash command and the promotion message's Pause / Roll back buttons.

A command only records a request for the rollout's next visit (which is not these tests' business)
and makes that visit due now. The canary itself is state: its row is written into the bot's store
as the rollout would have written it at the merge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli.registry_world import MAINTAINER, REGISTRY, RegistryWorld
from bot.commands.table import render_docs, render_help
from bot.promotion.authorization import ActorFacts, may_promote, may_stop_canary
from bot.promotion.promotion_state import CANARY_CHECK
from bot.rollout.canary_requests import CanaryAction, RolloutSeen, request
from bot.runtime.context import PromotionChange
from bot.slack.notifications import render_message
from bot.store.db import Store, open_store
from bot.store.models import CanaryRollout, Deadline, DeadlineStatus
from evaluators.policy import CanaryPolicy, ReviewPolicy, parse_policy
from tests.bot_harness import wait_until
from tests.policies import policy_text
from tests.slack_world import ALICE, MALLORY, SlackRig, start_slack_world

ONCALL = "oncall"  # write access, nobody's approver
CAPTAIN = "captain"  # in the acme/release team, a promote approver
PROMOTE_POLICY = {"canary": {"promote_approvers": ["release-manager", "acme/release"]}}


# -- the world -------------------------------------------------------------------------------


@pytest.fixture
def registry(world: RegistryWorld, tmp_path_factory: pytest.TempPathFactory) -> RegistryWorld:
    world.create_registry(policy_text=policy_text(**PROMOTE_POLICY))
    world.start_bot(cache_dir=tmp_path_factory.getbasetemp() / "prediction-cache")
    world.sandbox.set_permission(REGISTRY, ONCALL, "write")
    world.sandbox.set_permission(REGISTRY, CAPTAIN, "write")
    world.sandbox.set_permission(REGISTRY, "reader", "read")
    world.sandbox.add_team_member("acme", "release", CAPTAIN)
    return world


def open_pr(world: RegistryWorld, branch: str = "docs") -> int:
    """A PR that touches no model: enough to name in a command, nothing to evaluate."""
    world.sandbox.commit(REGISTRY, branch, {"README.md": b"# Registry\n"}, message="docs")
    return world.sandbox.open_pull(REGISTRY, branch, "main", "Docs", "data-scientist")


def merged_pr(world: RegistryWorld) -> int:
    number = open_pr(world)
    with world.sandbox.events():
        world.sandbox.merge_pull(REGISTRY, number, merge_method="squash", merged_by=MAINTAINER)
    return number


def start_canary(
    world: RegistryWorld,
    number: int,
    *,
    status: str = "running",
    paged: bool = False,
    model: str = "churn",
    next_look: timedelta = timedelta(hours=1),
) -> None:
    """The rows the rollout writes when a merged model's canary starts: the rollout, its visit."""
    pull = world.sandbox.pull(REGISTRY, number)
    now = world.clock.now()
    assert world.app is not None
    with world.app.state.ctx.store.session() as session:
        session.add(
            CanaryRollout(
                repository=REGISTRY,
                installation_id=world.installation_id,
                pr_number=number,
                head_sha=pull.head_sha,
                merge_sha=pull.merge_commit_sha or pull.head_sha,
                base_ref="main",
                model=model,
                version="v2",
                previous_version="v1",
                status=status,
                step_index=1,
                step_started_at=now,
                started_at=now,
                paged=paged,
            )
        )
        exists = session.scalar(
            select(Deadline).where(Deadline.kind == CANARY_CHECK, Deadline.pr_number == number)
        )
        if exists is None:
            session.add(
                Deadline(
                    kind=CANARY_CHECK,
                    repository=REGISTRY,
                    installation_id=world.installation_id,
                    pr_number=number,
                    head_sha=pull.head_sha,
                    due_at=now + next_look,
                    status=DeadlineStatus.PENDING.value,
                )
            )


@dataclass(frozen=True)
class Seen:
    status: str
    requested_action: str | None
    requested_by: str | None
    requested_reason: str | None


def canary(world: RegistryWorld, number: int, model: str = "churn") -> Seen:
    assert world.app is not None
    with world.app.state.ctx.store.session() as session:
        row = session.scalars(
            select(CanaryRollout).where(
                CanaryRollout.pr_number == number, CanaryRollout.model == model
            )
        ).one()
        return Seen(row.status, row.requested_action, row.requested_by, row.requested_reason)


def set_canary(world: RegistryWorld, number: int, **values: Any) -> None:
    """What the rollout's visit leaves behind (it carried the request out), as state."""
    assert world.app is not None
    with world.app.state.ctx.store.session() as session:
        row = session.scalars(select(CanaryRollout).where(CanaryRollout.pr_number == number)).one()
        for name, value in values.items():
            setattr(row, name, value)


def next_look(world: RegistryWorld, number: int) -> datetime:
    assert world.app is not None
    with world.app.state.ctx.store.session() as session:
        deadline = session.scalars(
            select(Deadline).where(Deadline.kind == CANARY_CHECK, Deadline.pr_number == number)
        ).one()
        return deadline.due_at.astimezone(UTC)


def replies_to(world: RegistryWorld, number: int, author: str) -> list[str]:
    return [
        c.body
        for c in world.sandbox.comments_on(REGISTRY, number)
        if c.body.startswith(f"@{author}")
    ]


def comment(world: RegistryWorld, number: int, body: str, author: str) -> str:
    """Post a comment as `author`; the bot's reply to it."""
    before = len(replies_to(world, number, author))
    world.sandbox.add_comment(REGISTRY, number, body, author)
    replies = wait_until(
        lambda: replies_to(world, number, author)[before:], what=f"the answer to {body!r}"
    )
    return str(replies[0])


# -- PR comments -----------------------------------------------------------------------------


def test_a_writers_rollback_is_recorded_for_the_next_check_and_stands_against_a_later_pause(
    registry: RegistryWorld,
) -> None:
    number = merged_pr(registry)
    start_canary(registry, number)
    assert next_look(registry, number) > registry.clock.now()

    refused = comment(registry, number, "/rollback it looks bad", "reader")
    assert "Not done: only people with write access to the registry may stop a canary" in refused
    assert canary(registry, number).requested_action is None

    reply = comment(
        registry, number, "Mobile p99 doubled.\n\n/rollback bad latency on mobile", ONCALL
    )
    assert (
        "Rolling back `churn` at the next check (within a minute): bad latency on mobile." in reply
    )
    assert canary(registry, number) == Seen("running", "rollback", ONCALL, "bad latency on mobile")
    assert next_look(registry, number) <= registry.clock.now()  # the visit is due now

    status = comment(registry, number, "/status", "reader")
    assert "- Canary `churn`: running, rollback asked by `oncall`" in status
    assert "canary_rollback_requested" in status and "bad latency on mobile" in status

    later = comment(registry, number, "/pause let's look first", MAINTAINER)
    assert f"A rollback of PR #{number} is already asked for and stands" in later
    assert canary(registry, number).requested_action == "rollback"
    wait_until(registry.idle, what="the bot to be idle")
    assert len(replies_to(registry, number, ONCALL)) == 1  # answered once


def test_promote_is_for_promote_approvers_only(registry: RegistryWorld) -> None:
    number = merged_pr(registry)
    start_canary(registry, number)

    refused = comment(registry, number, "/promote ship it", MAINTAINER)  # a review approver
    assert "only `canary.promote_approvers` in `.shipyard.yml` may promote a canary" in refused
    assert "`release-manager`, `acme/release`" in refused
    assert canary(registry, number).requested_action is None

    accepted = comment(registry, number, "/promote the fix must ship before the sale", CAPTAIN)
    assert "Promoting `churn` to all traffic at the next check (within a minute)" in accepted
    assert canary(registry, number) == Seen(
        "running", "promote", CAPTAIN, "the fix must ship before the sale"
    )


def test_pause_then_resume(registry: RegistryWorld) -> None:
    number = merged_pr(registry)
    start_canary(registry, number)

    assert "Pausing `churn` at the next check" in comment(registry, number, "/pause", ONCALL)
    assert canary(registry, number).requested_action == "pause"
    # Resumed before the visit paused it: the pause is simply no longer asked for.
    early = comment(registry, number, "/resume", ONCALL)
    assert "the pause asked for is withdrawn" in early
    assert canary(registry, number).requested_action is None

    comment(registry, number, "/pause waiting for the campaign", ONCALL)
    set_canary(registry, number, status="paused", requested_action=None, requested_by=None)
    resumed = comment(registry, number, "/resume", ONCALL)
    assert "Resuming `churn` at the next check (within a minute)." in resumed
    assert canary(registry, number) == Seen("paused", "resume", ONCALL, None)


def test_ack_only_while_a_page_is_open(registry: RegistryWorld) -> None:
    number = merged_pr(registry)
    start_canary(registry, number, status="rolled_back")

    nothing = comment(registry, number, "/ack", ONCALL)
    assert "Nothing to acknowledge for PR" in nothing and "`churn`: rolled back" in nothing
    assert canary(registry, number).requested_action is None

    set_canary(registry, number, paged=True)
    acked = comment(registry, number, "/ack looking into it", ONCALL)
    assert "Acknowledged: the page for `churn` is resolved at the next check" in acked
    assert canary(registry, number) == Seen("rolled_back", "acknowledge", ONCALL, "looking into it")
    assert next_look(registry, number) <= registry.clock.now()


def test_canary_commands_say_clearly_why_they_do_not_apply(registry: RegistryWorld) -> None:
    still_open = open_pr(registry, "still-open")
    reply = comment(registry, still_open, "/rollback bad latency", ONCALL)
    assert (
        f"PR #{still_open} is not merged yet: `/rollback` acts on the canary rollout that "
        "starts after the merge." in reply
    )
    registry.sandbox.set_pull_state(REGISTRY, still_open, state="closed")
    closed = comment(registry, still_open, "/pause", ONCALL)
    assert f"PR #{still_open} was closed without merging: it has no canary to pause." in closed

    number = merged_pr(registry)
    assert f"No canary has started for PR #{number}." in comment(registry, number, "/pause", ONCALL)
    assert "`/rollback` needs more: use `/rollback <reason>`" in comment(
        registry, number, "/rollback", ONCALL
    )
    start_canary(registry, number, status="promoted")
    done = comment(registry, number, "/rollback too late?", ONCALL)
    assert f"No canary is running for PR #{number} (`churn`: promoted)." in done


def test_help_lists_the_canary_commands(registry: RegistryWorld) -> None:
    number = merged_pr(registry)
    shown = comment(registry, number, "/help", ONCALL)
    for usage in ("/rollback <reason>", "/pause [reason]", "/resume", "/promote", "/ack [note]"):
        assert f"`{usage}" in shown
    docs = render_docs()
    assert "## `/rollback <reason>`" in docs and "## `/ack [note]`" in docs


# -- Slack -----------------------------------------------------------------------------------


@pytest.fixture
def rig(world: RegistryWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackRig]:
    rig = start_slack_world(
        world, cache_dir=tmp_path_factory.getbasetemp() / "prediction-cache", **PROMOTE_POLICY
    )
    try:
        yield rig
    finally:
        rig.close()


def answer(rig: SlackRig, response_url: str | None) -> str:
    assert response_url is not None
    said = wait_until(lambda: rig.slack.said_to(response_url), what="the ephemeral answer")
    assert len(said) == 1, said
    return str(said[0])


def buttons(message: Any) -> list[str]:
    return [
        element["action_id"]
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def test_the_roll_back_button_records_the_same_request(rig: SlackRig) -> None:
    world = rig.world
    number = world.open_candidate_pr("candidate_better")
    before = rig.the_message(containing="merges automatically")
    assert buttons(before) == ["shipyard_approve", "shipyard_block"]
    # The canary the rollout starts at the merge (its visits are far off: this test's clock jumps).
    start_canary(world, number, next_look=timedelta(days=30))
    world.pass_time(timedelta(hours=25))  # the window ends: Shipyard merges, the message is redrawn
    message = rig.the_message(containing="Canary churn")
    assert message.ts == before.ts
    assert buttons(message) == ["shipyard_pause", "shipyard_rollback"]

    unlinked = rig.people.click(MALLORY, message, "shipyard_pause")
    assert "not linked" in answer(rig, unlinked.response_url)
    assert canary(world, number).requested_action is None

    rig.people.click(ALICE, message, "shipyard_rollback")
    view_id = wait_until(lambda: list(rig.slack.views), what="the roll back modal")[0]
    empty = rig.people.submit(ALICE, view_id, {"reason": {"reason_input": " "}})
    assert empty.response.json()["response_action"] == "errors"
    done = rig.people.submit(ALICE, view_id, {"reason": {"reason_input": "bad latency <!here>"}})
    assert done.response.status_code == 200
    told = wait_until(lambda: rig.slack.ephemerals, what="the answer to the modal")
    assert told[0].user == ALICE.user_id and "Rolling back `churn`" in told[0].text
    assert "<!here>" not in told[0].text
    assert canary(world, number) == Seen("running", "rollback", "lead-ml", "bad latency <!here>")
    from_slack = wait_until(
        lambda: [
            c.body for c in world.sandbox.comments_on(REGISTRY, number) if "from Slack" in c.body
        ],
        what="the PR comment",
    )
    assert from_slack[0].startswith("`lead-ml` acted from Slack: `/rollback bad latency")


def test_the_slash_command_rolls_back_for_linked_writers_only(rig: SlackRig) -> None:
    world = rig.world
    number = merged_pr(world)
    start_canary(world, number)

    stranger = rig.people.slash(MALLORY, "/shipyard", f"rollback {REGISTRY}#{number} bad")
    assert "not linked" in answer(rig, stranger.response_url)
    assert canary(world, number).requested_action is None

    sent = rig.people.slash(ALICE, "/shipyard", f"rollback {REGISTRY}#{number} bad latency")
    assert sent.response.elapsed < timedelta(seconds=3)
    said = answer(rig, sent.response_url)
    assert f"`{REGISTRY}#{number}` as `lead-ml`: Rolling back `churn` at the next check" in said
    assert canary(world, number) == Seen("running", "rollback", "lead-ml", "bad latency")
    assert next_look(world, number) <= world.clock.now()


# -- pure: who may, and what the message offers ----------------------------------------------


def _facts(login: str, permission: str = "write", *, teams: frozenset[str] = frozenset()) -> Any:
    return ActorFacts(login=login, permission=permission, teams=teams, is_author=False)


@pytest.mark.parametrize(
    ("facts", "canary_policy", "allowed"),
    [
        pytest.param(_facts("rm"), CanaryPolicy(promote_approvers=["rm"]), True, id="listed"),
        pytest.param(
            _facts("x", teams=frozenset({"acme/release"})),
            CanaryPolicy(promote_approvers=["acme/release"]),
            True,
            id="a member of a listed team",
        ),
        pytest.param(
            _facts("lead"),
            CanaryPolicy(promote_approvers=["rm"]),
            False,
            id="a review approver is not enough when promote approvers are listed",
        ),
        pytest.param(_facts("lead"), CanaryPolicy(), True, id="else the review approvers"),
        pytest.param(_facts("oncall"), CanaryPolicy(), False, id="write access is not enough"),
        pytest.param(
            ActorFacts(login="rm", permission="admin", teams=frozenset(), is_author=True),
            CanaryPolicy(promote_approvers=["rm"]),
            False,
            id="the author may not skip their own canary's steps",
        ),
    ],
)
def test_who_may_promote(facts: ActorFacts, canary_policy: CanaryPolicy, allowed: bool) -> None:
    review = ReviewPolicy(approvers=["lead"])
    assert may_promote(facts, canary_policy, review).allowed is allowed


def test_stopping_is_open_to_writers_and_to_nobody_else() -> None:
    assert may_stop_canary(_facts("w", "write")).allowed
    assert may_stop_canary(_facts("a", "admin")).allowed
    assert not may_stop_canary(_facts("r", "read")).allowed
    assert not may_stop_canary(_facts("t", "triage")).allowed


def _change() -> PromotionChange:
    return PromotionChange(
        repository="acme/model-registry",
        installation_id=1,
        pr_number=7,
        pr_title="promote churn",
        pr_url=None,
        head_sha="abcdef1234567890",
        gate_title="Merged by Shipyard",
        gate_conclusion="success",
        window_ends_at=None,
        headlines=("churn: roc_auc +0.012",),
        report_urls=(),
        policy=parse_policy(None),
    )


def _line(status: str, *, paged: bool = False) -> RolloutSeen:
    return RolloutSeen("churn", status, paged, None, None)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param((), ["shipyard_approve", "shipyard_block"], id="before a canary: decide"),
        pytest.param((_line("running"),), ["shipyard_pause", "shipyard_rollback"], id="running"),
        pytest.param((_line("paused"),), ["shipyard_rollback"], id="paused"),
        pytest.param(
            (_line("paused", paged=True),),
            ["shipyard_rollback", "shipyard_ack"],
            id="paused and paged",
        ),
        pytest.param(
            (_line("rolled_back", paged=True),), ["shipyard_ack"], id="rolled back, paged"
        ),
        pytest.param((_line("promoted"),), [], id="promoted: nothing left to press"),
    ],
)
def test_the_message_offers_the_buttons_that_apply(
    lines: tuple[RolloutSeen, ...], expected: list[str]
) -> None:
    _text, blocks = render_message(_change(), canaries=lines)
    shown = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert shown == expected


def test_the_canary_line_shows_the_rollouts_text_as_text() -> None:
    line = RolloutSeen("churn", "paused", True, "pause", "<@U1>", title="held: <!channel> no data")
    _text, blocks = render_message(_change(), canaries=(line,))
    shown = str(blocks)
    assert "<!channel>" not in shown and "<@U1>" not in shown
    assert "Canary churn" in shown and "on-call paged" in shown


def test_slack_help_names_the_canary_commands() -> None:
    assert "`/rollback &lt;reason&gt;`" in render_help(surface="slack")


# -- the request a command leaves: its rules, against a real store ----------------------------

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = open_store(database_url)
    try:
        yield store
    finally:
        store.engine.dispose()


def _rollout(store: Store, *, status: str, paged: bool = False, pending: str | None = None) -> None:
    with store.session() as session:
        session.add(
            CanaryRollout(
                repository=REGISTRY,
                installation_id=1,
                pr_number=7,
                head_sha="a" * 40,
                merge_sha="b" * 40,
                base_ref="main",
                model="churn",
                version="v2",
                status=status,
                step_started_at=NOW,
                started_at=NOW,
                paged=paged,
                requested_action=pending,
                requested_by="first" if pending else None,
                requested_reason="the first reason" if pending else None,
            )
        )
        session.add(
            Deadline(
                kind=CANARY_CHECK,
                repository=REGISTRY,
                installation_id=1,
                pr_number=7,
                head_sha="a" * 40,
                due_at=NOW + timedelta(hours=1),
                status=DeadlineStatus.PENDING.value,
            )
        )


def _ask(store: Store, action: CanaryAction) -> tuple[tuple[str, ...], Seen, datetime]:
    with store.session() as session:
        requested = request(
            session,
            repository=REGISTRY,
            pr_number=7,
            action=action,
            actor="second",
            reason="the second reason",
            now=NOW,
        )
    with store.session() as session:
        row = session.scalars(select(CanaryRollout)).one()
        seen = Seen(row.status, row.requested_action, row.requested_by, row.requested_reason)
        due = session.scalars(select(Deadline)).one().due_at.astimezone(UTC)
    return requested.models, seen, due


REQUEST_CASES = [
    pytest.param(
        "running", False, "rollback", CanaryAction.PAUSE, "rollback", id="a rollback asked stands"
    ),
    pytest.param(
        "paused", True, "rollback", CanaryAction.ACKNOWLEDGE, "rollback", id="also against an ack"
    ),
    pytest.param(
        "paused", True, "resume", CanaryAction.ACKNOWLEDGE, "resume", id="an ack waits for a resume"
    ),
    pytest.param(
        "paused", True, "acknowledge", CanaryAction.RESUME, "resume", id="a resume replaces an ack"
    ),
    pytest.param(
        "running", False, "promote", CanaryAction.PAUSE, "pause", id="the latest decision counts"
    ),
    pytest.param(
        "rolled_back", False, None, CanaryAction.ACKNOWLEDGE, None, id="no page, nothing to ack"
    ),
    pytest.param("promoted", False, None, CanaryAction.ROLLBACK, None, id="a promoted one stays"),
]


@pytest.mark.parametrize(("status", "paged", "pending", "action", "after"), REQUEST_CASES)
def test_which_request_the_rollout_will_find(
    store: Store,
    status: str,
    paged: bool,
    pending: str | None,
    action: CanaryAction,
    after: str | None,
) -> None:
    _rollout(store, status=status, paged=paged, pending=pending)
    models, seen, due = _ask(store, action)
    assert seen.requested_action == after
    assert (models == ("churn",)) is (after == action.value)
    assert (due == NOW) is bool(models)  # the visit is made due only when something was asked


def test_a_second_rollback_keeps_the_first_reason(store: Store) -> None:
    _rollout(store, status="running", pending="rollback")
    models, seen, due = _ask(store, CanaryAction.ROLLBACK)
    assert models == ("churn",) and due == NOW
    assert seen == Seen("running", "rollback", "first", "the first reason")


def test_a_resume_before_the_visit_withdraws_the_pause(store: Store) -> None:
    _rollout(store, status="running", pending="pause")
    with store.session() as session:
        requested = request(
            session,
            repository=REGISTRY,
            pr_number=7,
            action=CanaryAction.RESUME,
            actor="second",
            reason=None,
            now=NOW,
        )
    assert requested.models == () and requested.withdrawn == ("churn",)
    with store.session() as session:
        assert session.scalars(select(CanaryRollout)).one().requested_action is None
