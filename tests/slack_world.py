"""A RegistryWorld with Slack: the Slack double beside the GitHub sandbox, the bot pointed at it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.cli.registry_world import RegistryWorld
from bot.sandbox.slack import SlackPeople, SlackSandboxServer, SlackState, SlackUser
from bot.sandbox.slack.state import Message
from tests.bot_harness import wait_until
from tests.policies import policy_text

CHANNEL = "C0PROMO"
TEAM = "T0TEAM"
ALICE = SlackUser(team_id=TEAM, user_id="U0ALICE", name="alice")  # linked to lead-ml
MALLORY = SlackUser(team_id=TEAM, user_id="U0MALLORY", name="lead-ml")  # display name is a lie

SLACK_POLICY = {"slack": {"channel": CHANNEL, "users": {f"{TEAM}:{ALICE.user_id}": "lead-ml"}}}


@dataclass
class SlackRig:
    """Everything a Slack test touches."""

    world: RegistryWorld
    slack: SlackState
    server: SlackSandboxServer
    people: SlackPeople
    signing_secret: str
    bot_settings: dict[str, Any]

    def restart_bot(self) -> None:
        """Stop the bot and start it again on the same database (a new port, the same Slack)."""
        self._stop_bot()
        self.world.start_bot(**self.bot_settings)
        assert self.world.bot is not None
        self.people.events_url = f"{self.world.bot.url}/slack/events"

    def close(self) -> None:
        self._stop_bot()  # first, so nothing the bot still does calls a stopped Slack
        self.server.stop()

    def _stop_bot(self) -> None:
        self.world.stop_bot()
        if self.world.app is not None:  # give its database connections back (PostgreSQL caps them)
            self.world.app.state.ctx.store.engine.dispose()

    def channel_messages(self) -> list[Message]:
        return self.slack.channel_messages(CHANNEL)

    def the_message(self, *, containing: str = "") -> Message:
        """Wait for the one promotion message (whose text contains `containing`)."""

        def found() -> Message | None:
            messages = self.channel_messages()
            return (
                messages[0]
                if len(messages) == 1 and containing in str(messages[0].blocks)
                else None
            )

        message: Message = wait_until(found, timeout_s=90, what=f"the Slack message {containing!r}")
        return message


def start_slack_world(world: RegistryWorld, *, cache_dir: Path, **policy: Any) -> SlackRig:
    """Registry with a Slack policy, the Slack double, and the bot with Slack on."""
    token = "xoxb-" + secrets.token_hex(12)
    signing_secret = secrets.token_hex(16)
    slack = SlackState(bot_token=token, team_id=TEAM, channels=(CHANNEL,), clock=world.clock.now)
    server = SlackSandboxServer(slack).start()
    world.create_registry(policy_text=policy_text(**{**SLACK_POLICY, **policy}))
    bot_settings: dict[str, Any] = {
        "cache_dir": cache_dir,
        "slack_bot_token": token,
        "slack_signing_secret": signing_secret,
        "slack_api_url": server.api_url,
    }
    world.start_bot(**bot_settings)
    assert world.bot is not None
    people = SlackPeople(
        slack, events_url=f"{world.bot.url}/slack/events", signing_secret=signing_secret
    )
    return SlackRig(world, slack, server, people, signing_secret, bot_settings)
