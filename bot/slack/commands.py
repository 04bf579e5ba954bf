"""Slash commands: `/shipyard <command> owner/repo#123 [text]` and aliases like `/approve …`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.request import BoltRequest

from bot.commands.parser import CommandName
from bot.commands.table import COMMANDS, render_help
from bot.runtime.context import BotContext
from bot.slack.dedupe import body_key
from bot.slack.durable import SlackAction, SlackReply, enqueue
from bot.slack.targets import PullTarget, parse_target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlashRequest:
    """A slash command's text, understood: which command, on which PR, with what text."""

    name: CommandName
    target: PullTarget | None
    args: str


def parse_slash(command: str, text: str, *, main: str) -> SlashRequest | str:
    """`/shipyard approve o/r#1 note` or `/approve o/r#1 note`; a str says what is wrong."""
    words = unescape(text).split(maxsplit=1 if command != main else 2)
    if command == main:
        if not words:
            return SlashRequest(CommandName.HELP, None, "")
        word, words = words[0].lstrip("/").lower(), words[1:]
    else:
        word = command.lstrip("/").lower()
    try:
        name = CommandName(word)
    except ValueError:
        return f"`{word}` is not a Shipyard command.\n\n" + render_help(surface="slack")
    if not COMMANDS[name].in_slack or not COMMANDS[name].available:
        return f"`/{name.value}` is not available in Slack."
    if name is CommandName.HELP:
        return SlashRequest(name, None, "")
    target = parse_target(words[0]) if words else None
    if target is None:
        return f"Name the pull request: `{main} {name.value} owner/repo#123" + (
            " …`" if COMMANDS[name].arguments.value != "none" else "`"
        )
    return SlashRequest(name, target, words[1] if len(words) > 1 else "")


def unescape(text: str) -> str:
    """Slack sends `&`, `<`, `>` escaped in command text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def register_commands(bolt: App, ctx: BotContext) -> None:
    """The main command and its aliases share one acknowledgement, which stores the work."""
    main = ctx.settings.slack_command
    aliases = ctx.settings.slack_command_aliases
    names = [main] + [alias for alias in aliases if alias != main and _is_command(alias)]
    for name in names:
        bolt.command(name)(_acknowledge(ctx, main))


def signed_at(request: BoltRequest) -> datetime | None:
    """When the person acted: the request's timestamp, which its verified signature covers."""
    values = request.headers.get("x-slack-request-timestamp") or []
    try:
        return datetime.fromtimestamp(int(values[0]), tz=UTC) if values else None
    except (ValueError, OverflowError, OSError):
        return None


def _is_command(alias: str) -> bool:
    if alias.lstrip("/").lower() in {c.value for c in CommandName}:
        return True
    log.warning("ignoring Slack alias %s: an alias must be a command's name", alias)
    return False


def _acknowledge(ctx: BotContext, main: str) -> Callable[..., None]:
    def acknowledge(ack: Ack, command: Mapping[str, Any], request: BoltRequest) -> None:
        """Within Slack's 3 seconds: answer what needs no GitHub call; store the rest first."""
        parsed = parse_slash(str(command["command"]), str(command.get("text", "")), main=main)
        if isinstance(parsed, str):
            ack(text=parsed)
        elif parsed.name is CommandName.HELP or parsed.target is None:
            ack(text=render_help(surface="slack"))
        else:
            enqueue(
                ctx,
                SlackAction(
                    request_key=body_key(request.raw_body),
                    repo=parsed.target.repo,
                    number=parsed.target.number,
                    name=parsed.name,
                    args=parsed.args,
                    team_id=str(command["team_id"]),
                    user_id=str(command["user_id"]),
                    signed_at=signed_at(request),
                    reply=SlackReply(response_url=str(command.get("response_url") or "") or None),
                ),
            )
            ack()

    return acknowledge
