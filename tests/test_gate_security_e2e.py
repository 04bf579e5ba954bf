"""A hostile PR author against the promotion gate, end to end over HTTP through the sandbox.

Each test performs the attack as its author would (branches, pushes, comments in the sandbox
GitHub) and asserts what the repository then shows: checks, replies, merges.
"""

from __future__ import annotations

import pickle
import time
from datetime import timedelta
from typing import Any

import pytest

from bot.cli.registry_world import MAINTAINER, REGISTRY, RegistryWorld
from tests.bot_harness import wait_until
from tests.policies import policy_text

GATE = "Shipyard / promotion-gate"
CANDIDATE = "Shipyard / candidate (churn)"
EVALUATION = "Shipyard / evaluation (churn)"
REVIEWER = "lead-ml"
POLICY_OWNER = "platform-owner"
AUTHOR = "data-scientist"


@pytest.fixture
def registry(world: RegistryWorld, tmp_path_factory: pytest.TempPathFactory) -> RegistryWorld:
    world.create_registry(policy_text=policy_text(review={"policy_approvers": [POLICY_OWNER]}))
    world.start_bot(cache_dir=tmp_path_factory.getbasetemp() / "prediction-cache")
    world.sandbox.set_permission(REGISTRY, POLICY_OWNER, "write")
    return world


def gate_settled(world: RegistryWorld, number: int, *, sha: str | None = None) -> Any:
    sha = sha or world.head_sha(number)

    def settled() -> Any:
        run = world.sandbox.check_run_named(REGISTRY, sha, GATE)
        return run if run is not None and run.status == "completed" else None

    return wait_until(settled, timeout_s=90, what="the promotion gate to settle")


def reply_to(world: RegistryWorld, number: int, author: str, *, after: int) -> str:
    reply = wait_until(
        lambda: next(
            (
                c
                for c in world.sandbox.comments_on(REGISTRY, number)[after:]
                if c.body.startswith(f"@{author}")
            ),
            None,
        ),
        what=f"the bot's answer to {author}",
    )
    return str(reply.body)


def comment(world: RegistryWorld, number: int, body: str, author: str = REVIEWER) -> str:
    before = len(world.sandbox.comments_on(REGISTRY, number))
    world.sandbox.add_comment(REGISTRY, number, body, author)
    return reply_to(world, number, author, after=before)


def report_body(world: RegistryWorld, number: int) -> str:
    return str(
        wait_until(
            lambda: next(
                (
                    c
                    for c in world.sandbox.comments_on(REGISTRY, number)
                    if c.body.startswith("<!-- shipyard:pr-report -->")
                ),
                None,
            ),
            what="the report comment",
        ).body
    )


# -- 1. smuggling files past the gate ------------------------------------------------------------


def test_a_clear_improvement_that_rewrites_the_policy_and_adds_a_workflow_never_merges_alone(
    registry: RegistryWorld,
) -> None:
    files = registry.candidate_files("candidate_better")
    files[".shipyard.yml"] = policy_text(
        review={"approvers": [AUTHOR], "allow_author_approval": True, "window_hours": 0}
    ).encode()
    files[".github/workflows/x.yml"] = b"on: push\njobs: {}\n"
    number = registry.open_candidate_pr("candidate_better", files=files, author=AUTHOR)

    gate = gate_settled(registry, number)
    assert gate.conclusion == "action_required"
    assert "files outside the model directories" in gate.output["title"]
    assert '".shipyard.yml"' in gate.output["summary"]
    assert '".github/workflows/x.yml"' in gate.output["summary"]
    assert 'only "platform-owner" may approve' in gate.output["summary"]
    assert registry.check_run(number, EVALUATION).conclusion == "success"  # clearly better
    assert '".github/workflows/x.yml"' in report_body(registry, number)

    registry.pass_time(timedelta(hours=25))  # a clean window would have merged it
    registry.pass_time(timedelta(minutes=1))
    assert not registry.sandbox.pull(REGISTRY, number).merged

    assert "author of a change to `.shipyard.yml`" in comment(registry, number, "/approve", AUTHOR)
    assert "only `review.policy_approvers`" in comment(registry, number, "/approve", REVIEWER)
    assert "Approved" in comment(registry, number, "/approve", POLICY_OWNER)
    assert gate_settled(registry, number).conclusion == "success"


def test_a_readme_only_pr_needs_an_authorised_approve_of_its_head(
    registry: RegistryWorld,
) -> None:
    registry.sandbox.commit(REGISTRY, "docs", {"README.md": b"# Registry\n\nHow to add one.\n"})
    number = registry.sandbox.open_pull(REGISTRY, "docs", "main", "Docs", AUTHOR)
    gate = gate_settled(registry, number)
    assert gate.conclusion == "action_required"
    assert '"README.md"' in gate.output["summary"]
    assert "Approved" in comment(registry, number, "/approve typo fix", REVIEWER)
    assert gate_settled(registry, number).conclusion == "success"


def test_a_changed_file_list_github_truncated_fails_the_gate(registry: RegistryWorld) -> None:
    registry.sandbox.max_listed_pull_files = 3  # as GitHub stops at 3,000
    number = registry.open_candidate_pr("candidate_better")
    gate = gate_settled(registry, number)
    assert gate.conclusion == "failure"
    assert "complete list of changed files could not be read" in gate.output["title"]
    assert "lists at most 3,000" in gate.output["summary"]
    assert registry.check_run(number, CANDIDATE) is None  # nothing judged on part of it


def test_a_changed_file_list_github_will_not_give_fails_the_gate(registry: RegistryWorld) -> None:
    registry.sandbox.inject_failure("GET", r"/pulls/\d+/files$", status=500, times=50)
    number = registry.open_candidate_pr("candidate_better")
    gate = gate_settled(registry, number)
    assert gate.conclusion == "failure"
    assert "did not return the list of changed files" in gate.output["summary"]


# -- 2. choosing its own policy ------------------------------------------------------------------


def test_a_pr_into_a_branch_carrying_its_own_policy_is_not_a_promotion(
    registry: RegistryWorld,
) -> None:
    hostile = policy_text(
        benchmark={"uri": "file:///proc/self/environ", "sha256": "0" * 64},
        review={"approvers": [AUTHOR], "allow_author_approval": True, "window_hours": 0},
    )
    evil_sha = registry.sandbox.commit(
        REGISTRY, "evil", {".shipyard.yml": hostile.encode()}, author=AUTHOR
    )
    registry.sandbox.commit(
        REGISTRY, "candidate", registry.candidate_files("candidate_better"), author=AUTHOR
    )
    registry.sandbox.create_branch(REGISTRY, "candidate-on-evil", from_ref="candidate")
    number = registry.sandbox.open_pull(REGISTRY, "candidate-on-evil", "evil", "Promote", AUTHOR)

    gate = gate_settled(registry, number)
    assert gate.conclusion == "action_required"
    assert gate.output["title"].startswith('Not a promotion: this PR targets "evil"')
    assert registry.check_run(number, CANDIDATE) is None
    assert registry.check_run(number, EVALUATION) is None
    main_sha = registry.sandbox.repo(REGISTRY).branches["main"]
    policy_reads = [r for r in registry.sandbox.requests if ".shipyard.yml" in r.path]
    assert policy_reads and all(evil_sha not in r.query for r in policy_reads)
    assert all(main_sha in r.query for r in policy_reads)
    assert "Approved" not in comment(registry, number, "/approve", AUTHOR)
    secret = registry.webhook_secret
    shown = [
        str(run.output)
        for run in registry.sandbox.check_runs_for(REGISTRY, registry.head_sha(number))
    ] + [c.body for c in registry.sandbox.comments_on(REGISTRY, number)]
    assert all(secret not in text for text in shown)


def test_a_merge_into_the_default_branch_makes_other_candidates_re_evaluate(
    registry: RegistryWorld,
) -> None:
    first = registry.open_candidate_pr("candidate_better")
    second = registry.open_candidate_pr("candidate_segment_regression")
    gate_settled(registry, first)
    gate_settled(registry, second)
    # The merge's webhook is sent at once, as GitHub does (a merge made on the sandbox's state
    # is otherwise delivered only with the next event, and the bot may be idle by then).
    with registry.sandbox.events():
        registry.sandbox.merge_pull(REGISTRY, first, merged_by=MAINTAINER)
    production = registry.sandbox.repo(REGISTRY).branches["main"]

    def re_evaluated() -> bool:
        assert registry.app is not None
        from bot.store.models import Evaluation

        with registry.app.state.ctx.store.session() as session:
            rows = session.query(Evaluation).filter(Evaluation.pr_number == second).all()
        return any(r.base_sha == production and r.status == "completed" for r in rows)

    wait_until(re_evaluated, timeout_s=120, what="the second PR measured against new production")
    assert gate_settled(registry, second).conclusion != "success"
    wait_until(lambda: "evidence_stale" in report_body(registry, second), what="the stale trail")


# -- 3. crashing a model out of gating -----------------------------------------------------------


def test_a_model_directory_that_crashes_registration_fails_its_check_and_never_merges(
    registry: RegistryWorld,
) -> None:
    files = registry.candidate_files("candidate_better")
    depth = 200_000
    files["models/churn/eval_results.json"] = b"[" * depth + b"]" * depth
    files["models/churn/weights/model.pkl"] = pickle.dumps({"not": "a model"})
    number = registry.open_candidate_pr("candidate_better", files=files)

    run = wait_until(
        lambda: (r := registry.check_run(number, CANDIDATE)) and r.status == "completed" and r,
        what="the candidate check",
    )
    assert run.conclusion == "failure"
    text = str(run.output)
    # Bounded parsing (evaluators/bounded.py) refuses the nesting before any recursion: a clear
    # problem named on the file, never an exception; the pickle is named too.
    assert "eval_results.json" in text and "model.pkl" in text
    assert "Recursion" not in text and "Error" not in text and "Traceback" not in text
    gate = gate_settled(registry, number)
    assert gate.conclusion == "failure"
    registry.pass_time(timedelta(hours=25))
    assert not registry.sandbox.pull(REGISTRY, number).merged


# -- 4. approving what the approver never saw ----------------------------------------------------


def test_an_approve_written_before_a_push_is_refused_even_when_handled_after_it(
    registry: RegistryWorld,
) -> None:
    number = registry.open_candidate_pr("candidate_segment_regression")
    first = registry.head_sha(number)
    assert gate_settled(registry, number).conclusion == "action_required"
    registry.pass_time(timedelta(minutes=5))

    before = len(registry.sandbox.comments_on(REGISTRY, number))
    with registry.sandbox.lock:  # written at T on head A; GitHub is slow to deliver it
        registry.sandbox.create_comment(REGISTRY, number, "/approve", REVIEWER)
        held = registry.sandbox.hold_events()
    registry.clock.advance(timedelta(seconds=1))
    registry.sandbox.push(  # head B at T+1, delivered and handled first
        REGISTRY,
        registry.sandbox.pull(REGISTRY, number).head_ref,
        {"models/churn/CHANGELOG.md": b"# churn\n\nSomething else.\n"},
        author=AUTHOR,
    )
    second = registry.head_sha(number)
    assert second != first
    gate_settled(registry, number, sha=second)
    registry.sandbox.release_events(held)

    reply = reply_to(registry, number, REVIEWER, after=before)
    assert "Not approved" in reply and "comment `/approve` again" in reply
    assert f"`{first[:7]}` to `{second[:7]}`" in reply
    gate = gate_settled(registry, number, sha=second)
    assert gate.conclusion == "action_required"
    assert f"0 of 1 required approval for {second[:7]}" in gate.output["summary"]
    registry.pass_time(timedelta(minutes=1))  # the reviewer looks at B, then approves it
    assert "Approved" in comment(registry, number, "/approve", REVIEWER)
    assert gate_settled(registry, number, sha=second).conclusion == "success"


def review(world: RegistryWorld, number: int, body: str, *, commit_id: str | None = None) -> str:
    before = len(world.sandbox.comments_on(REGISTRY, number))
    world.sandbox.submit_review(
        REGISTRY, number, body, REVIEWER, commit_id=commit_id, state="approved"
    )
    return reply_to(world, number, REVIEWER, after=before)


def test_an_approve_in_a_review_of_the_current_head_counts(registry: RegistryWorld) -> None:
    number = registry.open_candidate_pr("candidate_segment_regression")
    assert gate_settled(registry, number).conclusion == "action_required"
    registry.pass_time(timedelta(minutes=5))

    assert "Approved" in review(registry, number, "/approve")
    assert gate_settled(registry, number).conclusion == "success"


def test_an_approve_in_a_review_of_the_old_head_is_refused(registry: RegistryWorld) -> None:
    number = registry.open_candidate_pr("candidate_segment_regression")
    first = registry.head_sha(number)
    assert gate_settled(registry, number).conclusion == "action_required"
    registry.pass_time(timedelta(minutes=5))
    registry.sandbox.push(  # the reviewer's page still shows head A
        REGISTRY,
        registry.sandbox.pull(REGISTRY, number).head_ref,
        {"models/churn/CHANGELOG.md": b"# churn\n\nSomething else.\n"},
        author=AUTHOR,
    )
    second = registry.head_sha(number)
    assert second != first
    gate_settled(registry, number, sha=second)
    registry.pass_time(timedelta(minutes=1))

    reply = review(registry, number, "/approve", commit_id=first)
    assert "Not approved" in reply and "`/approve` again" in reply
    assert f"`{first[:7]}` to `{second[:7]}`" in reply
    gate = gate_settled(registry, number, sha=second)
    assert gate.conclusion == "action_required"
    assert f"0 of 1 required approval for {second[:7]}" in gate.output["summary"]


# -- 5. flood ------------------------------------------------------------------------------------


def test_a_comment_with_400_approves_from_an_outsider_costs_a_few_github_calls(
    registry: RegistryWorld,
) -> None:
    number = registry.open_candidate_pr("candidate_segment_regression")
    gate_settled(registry, number)
    wait_until(registry.idle, what="the bot to be idle")
    calls_before = len(registry.sandbox.requests)
    started = time.monotonic()
    reply = comment(registry, number, "\n".join(["/approve"] * 400), "outsider")
    elapsed = time.monotonic() - started
    wait_until(registry.idle, what="the bot to be idle")
    calls = [r for r in registry.sandbox.requests[calls_before:] if r.path.startswith("/repos")]

    assert reply.count("Not approved") == 5
    assert "395 more command lines in this comment were ignored" in reply
    assert len(calls) <= 12, [f"{r.method} {r.path}" for r in calls]
    assert sum("/permission" in r.path for r in calls) == 1
    assert elapsed < 15
    assert gate_settled(registry, number).conclusion == "action_required"
