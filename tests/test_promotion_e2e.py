"""The promotion loop end to end over HTTP: report, commands, review window, pinned auto-merge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli.registry_world import MAINTAINER, REGISTRY, RegistryWorld
from tests.bot_harness import wait_until
from tests.policies import policy_text

GATE = "Shipyard / promotion-gate"
EVALUATION = "Shipyard / evaluation (churn)"
REVIEWER = "lead-ml"


@pytest.fixture
def registry(world: RegistryWorld, tmp_path_factory: pytest.TempPathFactory) -> RegistryWorld:
    world.create_registry(policy_text=policy_text())
    world.start_bot(cache_dir=_shared_cache(tmp_path_factory))
    return world


def _shared_cache(factory: pytest.TempPathFactory) -> Path:
    # Model outputs are content-addressed; sharing them across tests only saves time.
    return factory.getbasetemp() / "prediction-cache"


def gate_settled(world: RegistryWorld, number: int, *, sha: str | None = None) -> Any:
    sha = sha or world.head_sha(number)

    def settled() -> Any:
        run = world.sandbox.check_run_named(REGISTRY, sha, GATE)
        return run if run is not None and run.status == "completed" else None

    return wait_until(settled, timeout_s=90, what="the promotion gate to settle")


def report_comments(world: RegistryWorld, number: int) -> list[Any]:
    return [
        c
        for c in world.sandbox.comments_on(REGISTRY, number)
        if c.body.startswith("<!-- shipyard:pr-report -->")
    ]


def merge_requests(world: RegistryWorld) -> list[Any]:
    return [r for r in world.sandbox.requests if r.method == "PUT" and r.path.endswith("/merge")]


def comment(world: RegistryWorld, number: int, body: str, author: str = REVIEWER) -> str:
    """Post a comment as `author`; return the bot's reply to it."""
    before = len(world.sandbox.comments_on(REGISTRY, number))
    world.sandbox.add_comment(REGISTRY, number, body, author)
    reply = wait_until(
        lambda: next(
            (
                c
                for c in world.sandbox.comments_on(REGISTRY, number)[before:]
                if c.body.startswith(f"@{author}")
            ),
            None,
        ),
        what=f"the bot's answer to {body!r}",
    )
    return str(reply.body)


def test_a_clear_improvement_is_reported_and_merges_when_the_window_ends(
    registry: RegistryWorld,
) -> None:
    number = registry.open_candidate_pr("candidate_better")
    sha = registry.head_sha(number)
    gate = gate_settled(registry, number)
    assert gate.conclusion == "action_required", gate.output
    assert "merges automatically at 2026-11-25 09:00 UTC" in gate.output["title"], gate.output

    evaluation = registry.check_run(number, EVALUATION)
    assert (evaluation.status, evaluation.conclusion) == ("completed", "success")
    report_url = evaluation.details_url.replace("http://localhost:8000", registry.bot.url)
    html = httpx.get(report_url, timeout=60)
    assert html.status_code == 200
    assert "<svg" in html.text or "<img" in html.text
    comments = wait_until(lambda: report_comments(registry, number), what="the report comment")
    assert len(comments) == 1
    assert "17 segments improved, 0 regressed" in comments[0].body

    registry.pass_time(timedelta(hours=23))
    assert not registry.sandbox.pull(REGISTRY, number).merged
    registry.pass_time(timedelta(hours=2))
    wait_until(lambda: registry.sandbox.pull(REGISTRY, number).merged, what="the auto-merge")
    pull = registry.sandbox.pull(REGISTRY, number)
    assert pull.merged_by == "shipyard[bot]"
    merges = wait_until(lambda: merge_requests(registry), what="the merge request record")
    assert len(merges) == 1
    assert merges[0].body == {"sha": sha, "merge_method": "squash"}
    final = wait_until(
        lambda: (
            "Merged by Shipyard" in report_comments(registry, number)[0].body
            and report_comments(registry, number)
        ),
        what="the comment to say merged",
    )
    assert len(final) == 1
    assert "merge_merged" in final[0].body  # the audit trail records the merge


def test_the_report_and_comment_name_the_commit_author_and_changelog(
    registry: RegistryWorld,
) -> None:
    number = registry.open_candidate_pr("candidate_better", author="data-scientist")
    sha = registry.head_sha(number)
    gate_settled(registry, number)
    evaluation = registry.check_run(number, EVALUATION)
    report_url = evaluation.details_url.replace("http://localhost:8000", registry.bot.url)
    html = httpx.get(report_url, timeout=60).text
    comments = wait_until(lambda: report_comments(registry, number), what="the report comment")
    changelog = "Switch to gradient boosting to capture segment interactions"
    for shown in (html, comments[0].body):
        assert f"commit <code>{sha[:12]}</code>" in shown or f"commit `{sha[:12]}`" in shown
        assert "by data-scientist" in shown
        assert "GradientBoostingClassifier" in shown
        assert changelog in shown


def test_the_bot_down_through_the_deadline_merges_exactly_once_after_restart(
    registry: RegistryWorld,
) -> None:
    number = registry.open_candidate_pr("candidate_better")
    assert gate_settled(registry, number).conclusion == "action_required", registry.check_run(
        number, EVALUATION
    ).output
    registry.pass_time(timedelta(hours=23))
    registry.stop_bot()
    registry.pass_time(timedelta(hours=2))
    assert not registry.sandbox.pull(REGISTRY, number).merged
    registry.start_bot()
    wait_until(lambda: registry.sandbox.pull(REGISTRY, number).merged, what="merge after restart")
    registry.pass_time(timedelta(minutes=30))  # more ticks must not merge again
    wait_until(lambda: "Merged by Shipyard" in report_comments(registry, number)[0].body)
    assert len(merge_requests(registry)) == 1


def test_a_segment_regression_needs_an_approval_bound_to_its_sha(registry: RegistryWorld) -> None:
    number = registry.open_candidate_pr("candidate_segment_regression")
    first_sha = registry.head_sha(number)
    gate = gate_settled(registry, number)
    assert gate.conclusion == "action_required"
    assert "Needs review" in gate.output["title"]
    assert "entity_type=public_sector regressed" in gate.output["summary"]

    reply = comment(registry, number, "Checked with the account team.\n/approve trade-off is ok")
    assert "Approved" in reply
    assert gate_settled(registry, number).conclusion == "success"

    registry.sandbox.push(
        REGISTRY,
        registry.sandbox.pull(REGISTRY, number).head_ref,
        {"models/churn/CHANGELOG.md": b"# churn\n\nRetrained.\n"},
        author="data-scientist",
    )
    second_sha = registry.head_sha(number)
    assert second_sha != first_sha
    gate = gate_settled(registry, number, sha=second_sha)
    assert gate.conclusion == "action_required"
    assert f"0 of 1 required approval for {second_sha[:7]}" in gate.output["summary"]
    registry.pass_time(timedelta(days=3))
    registry.pass_time(timedelta(minutes=1))
    assert not registry.sandbox.pull(REGISTRY, number).merged


@pytest.mark.parametrize(
    "body",
    ["> /approve", "```\n/approve\n```", "<!-- /approve -->", "we could `/approve` later"],
    ids=[
        "a quoted approve",
        "an approve in a code block",
        "an approve in an html comment",
        "an approve in inline code",
    ],
)
def test_commands_that_are_not_really_given_do_nothing(registry: RegistryWorld, body: str) -> None:
    number = registry.open_candidate_pr("candidate_segment_regression")
    gate_settled(registry, number)
    registry.sandbox.add_comment(REGISTRY, number, body, REVIEWER)
    marker = "/status"
    comment(registry, number, marker)  # a real command afterwards proves the bot has caught up
    assert gate_settled(registry, number).conclusion == "action_required"
    replies = [
        c
        for c in registry.sandbox.comments_on(REGISTRY, number)
        if c.body.startswith(f"@{REVIEWER}")
    ]
    assert len(replies) == 1 and "/status" in replies[0].body


def test_who_may_approve_comes_from_the_base_branch_policy(registry: RegistryWorld) -> None:
    number = registry.open_candidate_pr("candidate_segment_regression")
    gate_settled(registry, number)
    assert "author may not approve" in comment(registry, number, "/approve", "data-scientist")
    registry.sandbox.set_permission(REGISTRY, "someone-else", "write")
    assert "only approvers listed" in comment(registry, number, "/approve", "someone-else")
    registry.sandbox.add_team_member("acme", "ml-reviewers", "team-reviewer")
    assert "Approved" in comment(registry, number, "/approve", "team-reviewer")
    assert gate_settled(registry, number).conclusion == "success"


def test_a_block_stops_the_auto_merge_until_the_blocker_unblocks(registry: RegistryWorld) -> None:
    number = registry.open_candidate_pr("candidate_better")
    gate_settled(registry, number)
    registry.sandbox.set_permission(REGISTRY, "oncall", "write")
    assert "reason" in comment(registry, number, "/block", "oncall").lower()
    assert "Blocked" in comment(registry, number, "/block holiday freeze", "oncall")
    gate = gate_settled(registry, number)
    assert gate.conclusion == "failure"
    assert "holiday freeze" in gate.output["title"]

    registry.pass_time(timedelta(hours=25))
    wait_until(lambda: "gate not success" in _deadline_result(registry), what="the window to end")
    assert not registry.sandbox.pull(REGISTRY, number).merged

    assert "only the blocker" in comment(registry, number, "/unblock", "data-scientist")
    assert "Unblocked" in comment(registry, number, "/unblock", "oncall")
    wait_until(lambda: registry.sandbox.pull(REGISTRY, number).merged, what="merge after unblock")


def _deadline_result(world: RegistryWorld) -> str:
    from bot.store.models import Deadline

    assert world.app is not None
    with world.app.state.ctx.store.session() as session:
        return " ".join(d.result or "" for d in session.query(Deadline))


def test_help_is_generated_from_the_command_table_and_status_shows_the_trail(
    registry: RegistryWorld,
) -> None:
    number = registry.open_candidate_pr("candidate_better")
    gate_settled(registry, number)
    help_text = comment(registry, number, "/help")
    for usage in ("/approve", "/block <reason>", "/unblock", "/retest", "/status"):
        assert usage in help_text
    status = comment(registry, number, "/status", MAINTAINER)
    assert "review_window_opened" in status and "evaluation_completed" in status


@pytest.mark.parametrize(
    "status, expected",
    [(409, "head changed"), (405, "not mergeable")],
    ids=["a 409 means the head moved", "a 405 is reported, not retried"],
)
def test_github_refusing_the_merge_is_recorded_and_not_retried(
    registry: RegistryWorld, status: int, expected: str
) -> None:
    number = registry.open_candidate_pr("candidate_better")
    gate_settled(registry, number)
    message = "Head branch was modified." if status == 409 else "Pull Request is not mergeable"
    registry.sandbox.inject_failure(
        "PUT", r"/merge$", status=status, body={"message": message}, times=5
    )
    registry.pass_time(timedelta(hours=25))
    wait_until(lambda: "not merged" in _deadline_result(registry), what="the merge attempt")
    registry.pass_time(timedelta(hours=1))
    wait_until(lambda: "merge_" in report_comments(registry, number)[0].body)
    assert len(merge_requests(registry)) == 1
    assert not registry.sandbox.pull(REGISTRY, number).merged
    assert message in report_comments(registry, number)[0].body


def test_a_pr_merged_by_hand_before_the_deadline_is_not_merged_again(
    registry: RegistryWorld,
) -> None:
    number = registry.open_candidate_pr("candidate_better")
    gate_settled(registry, number)
    registry.sandbox.merge_pull(REGISTRY, number, merged_by=MAINTAINER)
    registry.pass_time(timedelta(hours=25))
    wait_until(lambda: "already merged" in _deadline_result(registry), what="reconciliation")
    assert merge_requests(registry) == []


def test_an_approve_added_by_editing_a_comment_is_ignored(registry: RegistryWorld) -> None:
    number = registry.open_candidate_pr("candidate_segment_regression")
    gate_settled(registry, number)
    comment_id = registry.sandbox.add_comment(REGISTRY, number, "Looking at it.", REVIEWER)
    registry.sandbox.edit_comment(REGISTRY, comment_id, "/approve", actor=REVIEWER)
    comment(registry, number, "/status")  # a later command proves the edit was handled
    assert gate_settled(registry, number).conclusion == "action_required"
    replies = [
        c
        for c in registry.sandbox.comments_on(REGISTRY, number)
        if c.body.startswith(f"@{REVIEWER}")
    ]
    assert len(replies) == 1


def test_the_bots_own_comments_never_run_commands(registry: RegistryWorld) -> None:
    number = registry.open_candidate_pr("candidate_better")
    gate_settled(registry, number)
    # The report comment lists the commands; the bot must not act on its own text.
    body = wait_until(lambda: report_comments(registry, number))[0].body
    assert "/approve" in body
    assert "approved" not in _audit_kinds(registry)


def _audit_kinds(world: RegistryWorld) -> set[str]:
    from bot.store.models import AuditEvent

    assert world.app is not None
    with world.app.state.ctx.store.session() as session:
        return {row.kind for row in session.query(AuditEvent)}
