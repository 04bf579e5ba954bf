"""Without Slack settings the bot runs as before and Slack is simply off."""

from __future__ import annotations

import httpx

from bot.cli.registry_world import REGISTRY, RegistryWorld
from tests.bot_harness import wait_until


def test_without_slack_settings_there_is_no_slack_endpoint_and_github_still_works(
    world: RegistryWorld,
) -> None:
    world.create_registry()
    bot = world.start_bot(evaluation_workers=0)
    assert not world.settings.slack_enabled
    assert httpx.post(f"{bot.url}/slack/events", content=b"command=%2Fshipyard").status_code == 404
    assert httpx.get(f"{bot.url}/healthz").json()["status"] == "ok"
    number = world.open_candidate_pr("candidate_better")
    run = wait_until(
        lambda: world.check_run(number, "Shipyard / candidate (churn)"),
        what="the registration check",
    )
    assert run.head_sha == world.head_sha(number)
    assert world.sandbox.pull(REGISTRY, number).state == "open"
