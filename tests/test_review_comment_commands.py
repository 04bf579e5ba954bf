"""Commands in a review comment (on a line of the diff) work like those in the conversation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.cli.registry_world import REGISTRY, RegistryWorld
from tests.bot_harness import wait_until
from tests.policies import policy_text

ROOT = Path(__file__).resolve().parents[1]
GATE = "Shipyard / promotion-gate"


def test_the_app_subscribes_to_review_comments() -> None:
    manifest = yaml.safe_load((ROOT / "app.yml").read_text())
    assert "pull_request_review_comment" in manifest["default_events"]


def test_a_block_in_a_review_comment_blocks_the_pull_request(
    world: RegistryWorld, tmp_path_factory: pytest.TempPathFactory
) -> None:
    world.create_registry(policy_text=policy_text())
    world.start_bot(cache_dir=tmp_path_factory.getbasetemp() / "prediction-cache")
    number = world.open_candidate_pr("candidate_better")
    wait_until(
        lambda: (run := world.check_run(number, GATE)) is not None and run.status == "completed",
        timeout_s=120,
        what="the gate",
    )
    world.sandbox.set_permission(REGISTRY, "oncall", "write")
    world.sandbox.add_review_comment(
        REGISTRY, number, "This feature leaks the label.\n\n/block leakage in tenure", "oncall"
    )
    reply = wait_until(
        lambda: next(
            (c for c in world.sandbox.comments_on(REGISTRY, number) if c.body[:7] == "@oncall"),
            None,
        ),
        what="the bot's answer",
    )
    assert "Blocked" in reply.body and "leakage in tenure" in reply.body
    gate = wait_until(
        lambda: (
            (run := world.check_run(number, GATE)) is not None
            and "Blocked" in run.output["title"]
            and run
        ),
        what="the blocked gate",
    )
    assert gate.conclusion == "failure"
