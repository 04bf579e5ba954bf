"""A Slack outage never costs an acknowledgement: a verified request is answered 200 at once
while Slack's Web API is unreachable, and the command is still carried out."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from bot.base.local_server import free_port
from bot.cli.registry_world import REGISTRY, RegistryWorld
from bot.sandbox.slack import SlackPeople, SlackSandboxServer, SlackState
from tests.bot_harness import wait_until
from tests.policies import policy_text
from tests.slack_world import ALICE, CHANNEL, SLACK_POLICY, TEAM


def test_a_signed_command_is_acknowledged_while_slacks_web_api_is_down(
    world: RegistryWorld, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = "xoxb-" + secrets.token_hex(12)
    signing_secret = secrets.token_hex(16)
    # Slack's response_url hooks answer; its Web API (auth.test, chat.*) is a closed port.
    slack = SlackState(bot_token=token, team_id=TEAM, channels=(CHANNEL,), clock=world.clock.now)
    hooks = SlackSandboxServer(slack).start()
    try:
        world.create_registry(policy_text=policy_text(**SLACK_POLICY))
        world.sandbox.commit(REGISTRY, "docs", {"README.md": b"# Registry\n"}, message="docs")
        number = world.sandbox.open_pull(REGISTRY, "docs", "main", "Docs", "data-scientist")
        world.start_bot(
            cache_dir=tmp_path_factory.getbasetemp() / "prediction-cache",
            slack_bot_token=token,
            slack_signing_secret=signing_secret,
            slack_api_url=f"http://127.0.0.1:{free_port()}/api/",
        )
        assert world.bot is not None
        people = SlackPeople(
            slack, events_url=f"{world.bot.url}/slack/events", signing_secret=signing_secret
        )

        sent = people.slash(ALICE, "/shipyard", f"block {REGISTRY}#{number} release freeze")
        assert sent.response.status_code == 200
        assert sent.response.elapsed < timedelta(seconds=3)

        # The command's effect on GitHub, and the private answer, still arrive.
        comments = wait_until(
            lambda: [
                c.body
                for c in world.sandbox.comments_on(REGISTRY, number)
                if "from Slack" in c.body
            ],
            what="the PR comment saying who blocked from Slack",
        )
        assert "Blocked: release freeze" in comments[0]
        assert sent.response_url is not None
        told = wait_until(lambda: slack.said_to(str(sent.response_url)), what="the answer")
        assert "Blocked" in told[0]

        helped = people.slash(ALICE, "/shipyard", "help")  # answered inline, no Slack call
        assert helped.response.status_code == 200 and "/block" in helped.response.text
    finally:
        world.stop_bot()
        if world.app is not None:
            world.app.state.ctx.store.engine.dispose()
        hooks.stop()
