"""The one command table: usage, examples and who may use each; /help and the docs come from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from bot.commands.parser import Command, CommandName

MAX_ARGS_LENGTH = 1000  # a note or reason is kept in the audit trail; keep it a note, not a file


class Permission(StrEnum):
    """Who may use a command; the authorisation check decides who that is for a repository."""

    APPROVER = "approver"  # listed under review.approvers in the base branch's .shipyard.yml
    # canary.promote_approvers in the base branch's .shipyard.yml, else review.approvers
    PROMOTE_APPROVER = "promote_approver"
    WRITE = "write"  # anyone with write access to the repository
    BLOCKER_OR_ADMIN = "blocker_or_admin"  # whoever placed the block, or a repository admin
    ANYONE = "anyone"


class Arguments(StrEnum):
    """Whether a command takes text after its name."""

    NONE = "none"  # extra text is allowed and ignored
    OPTIONAL = "optional"
    REQUIRED = "required"


class Stage(StrEnum):
    """Which pull requests a command acts on."""

    REVIEW = "review"  # open pull requests: the promotion before the merge
    CANARY = "canary"  # merged pull requests: the canary rollout that follows the merge
    ANY = "any"


@dataclass(frozen=True)
class CommandSpec:
    """Everything said about one command, in one place."""

    name: CommandName
    usage: str
    summary: str
    examples: tuple[str, ...]
    permission: Permission
    arguments: Arguments
    in_slack: bool
    stage: Stage = Stage.ANY
    available: bool = True

    @property
    def args_required(self) -> bool:
        return self.arguments is Arguments.REQUIRED


_WHO: Mapping[Permission, str] = MappingProxyType(
    {
        Permission.APPROVER: "approvers listed in .shipyard.yml",
        Permission.PROMOTE_APPROVER: (
            "canary.promote_approvers in .shipyard.yml, else review.approvers"
        ),
        Permission.WRITE: "anyone with write access",
        Permission.BLOCKER_OR_ADMIN: "whoever blocked, or a repository admin",
        Permission.ANYONE: "anyone",
    }
)

COMMANDS: Mapping[CommandName, CommandSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            CommandSpec(
                name=CommandName.APPROVE,
                usage="/approve [note]",
                summary="Approve promoting this exact head commit; the note is kept with it.",
                examples=(
                    "/approve",
                    "/approve the recall drop on mobile is expected, see CHANGELOG",
                ),
                permission=Permission.APPROVER,
                arguments=Arguments.OPTIONAL,
                in_slack=True,
                stage=Stage.REVIEW,
            ),
            CommandSpec(
                name=CommandName.BLOCK,
                usage="/block <reason>",
                summary="Stop promotion, including automatic promotion, until someone unblocks.",
                examples=("/block wait until the holiday traffic test is done",),
                permission=Permission.WRITE,
                arguments=Arguments.REQUIRED,
                in_slack=True,
            ),
            CommandSpec(
                name=CommandName.UNBLOCK,
                usage="/unblock",
                summary="Lift your block so promotion can go on.",
                examples=("/unblock",),
                permission=Permission.BLOCKER_OR_ADMIN,
                arguments=Arguments.NONE,
                in_slack=True,
            ),
            CommandSpec(
                name=CommandName.RETEST,
                usage="/retest",
                summary="Run the evaluation of the current head commit again.",
                examples=("/retest",),
                permission=Permission.WRITE,
                arguments=Arguments.NONE,
                in_slack=True,
                stage=Stage.REVIEW,
            ),
            CommandSpec(
                name=CommandName.STATUS,
                usage="/status",
                summary="Show where this promotion stands, with its audit trail.",
                examples=("/status",),
                permission=Permission.ANYONE,
                arguments=Arguments.NONE,
                in_slack=True,
            ),
            CommandSpec(
                name=CommandName.HELP,
                usage="/help",
                summary="List the commands and who may use them.",
                examples=("/help",),
                permission=Permission.ANYONE,
                arguments=Arguments.NONE,
                in_slack=True,
            ),
            CommandSpec(
                name=CommandName.ROLLBACK,
                usage="/rollback <reason>",
                summary="Roll the canary back: all traffic returns to the previous model version.",
                examples=("/rollback error rate doubled after the 25% step",),
                permission=Permission.WRITE,
                arguments=Arguments.REQUIRED,
                in_slack=True,
                stage=Stage.CANARY,
            ),
            CommandSpec(
                name=CommandName.PAUSE,
                usage="/pause [reason]",
                summary="Hold the canary at its current share of traffic until `/resume`.",
                examples=("/pause", "/pause wait for the marketing campaign to end"),
                permission=Permission.WRITE,
                arguments=Arguments.OPTIONAL,
                in_slack=True,
                stage=Stage.CANARY,
            ),
            CommandSpec(
                name=CommandName.RESUME,
                usage="/resume",
                summary="Let a paused canary go on with its steps.",
                examples=("/resume",),
                permission=Permission.WRITE,
                arguments=Arguments.NONE,
                in_slack=True,
                stage=Stage.CANARY,
            ),
            CommandSpec(
                name=CommandName.PROMOTE,
                usage="/promote [reason]",
                summary="Skip the canary's remaining steps: the new version takes all traffic.",
                examples=("/promote", "/promote the fix for the checkout outage must ship now"),
                permission=Permission.PROMOTE_APPROVER,
                arguments=Arguments.OPTIONAL,
                in_slack=True,
                stage=Stage.CANARY,
            ),
            CommandSpec(
                name=CommandName.ACK,
                usage="/ack [note]",
                summary="Acknowledge a rollback or pause that paged on-call; the page is resolved.",
                examples=("/ack", "/ack looking into the latency spike"),
                permission=Permission.WRITE,
                arguments=Arguments.OPTIONAL,
                in_slack=True,
                stage=Stage.CANARY,
            ),
        )
    }
)


def spec_for(name: CommandName) -> CommandSpec:
    """The table row of one command."""
    return COMMANDS[name]


def validate(command: Command) -> str | None:
    """Why ``command`` cannot be run as written (shown to its author), or None when it can."""
    spec = COMMANDS[command.name]
    if not spec.available:
        return f"`/{spec.name}` is not available yet."
    if spec.args_required and not command.args:
        return f"`/{spec.name}` needs more: use `{spec.usage}`, e.g. `{spec.examples[0]}`."
    if len(command.args) > MAX_ARGS_LENGTH:
        return f"The text after `/{spec.name}` is too long (at most {MAX_ARGS_LENGTH} characters)."
    return None


def render_help(*, surface: Literal["github", "slack"]) -> str:
    """The answer to /help: a Markdown table on GitHub, mrkdwn text in Slack."""
    if surface == "github":
        return _help_github()
    return _help_slack()


def _shown(*, surface: Literal["github", "slack"]) -> list[CommandSpec]:
    return [s for s in COMMANDS.values() if s.available and (surface == "github" or s.in_slack)]


def _help_github() -> str:
    rows = [
        f"| `{spec.usage}` | {spec.summary} | {_WHO[spec.permission]} |"
        for spec in _shown(surface="github")
    ]
    return "\n".join(
        [
            "**Shipyard commands**",
            "",
            "| Command | What it does | Who may use it |",
            "| --- | --- | --- |",
            *rows,
            "",
            "Write a command at the start of its own line. Commands in quotes, code and HTML"
            " comments are ignored, as are edited comments.",
            "",
            _canary_note(surface="github"),
            "",
        ]
    )


def _help_slack() -> str:
    lines = [
        _slack_escape(f"• `{spec.usage}` — {spec.summary} _({_WHO[spec.permission]})_")
        for spec in _shown(surface="slack")
    ]
    return "\n".join(["*Shipyard commands*", *lines, _canary_note(surface="slack"), ""])


def _canary_note(*, surface: Literal["github", "slack"]) -> str:
    names = ", ".join(f"`/{s.name}`" for s in _shown(surface=surface) if s.stage is Stage.CANARY)
    return (
        f"{names} act on a merged pull request's canary: the rollout carries the request out at"
        f" its next check, within a minute."
    )


def _slack_escape(text: str) -> str:
    # Slack reads <...> as links and mentions, even inside code.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_docs() -> str:
    """The text of docs/commands.md."""
    sections: list[str] = []
    for spec in COMMANDS.values():
        title = f"## `{spec.usage}`" + ("" if spec.available else " (coming later)")
        where = "GitHub pull requests" + (" and Slack" if spec.in_slack else "")
        when = _STAGE_DOC[spec.stage]
        examples = "\n".join(spec.examples)
        sections.append(
            f"{title}\n\n{spec.summary}\n\n"
            f"- Who may use it: {_WHO[spec.permission]}\n"
            f"- Text after the command: {_ARGUMENTS_DOC[spec.arguments]}\n"
            f"- Where: {where}\n"
            f"- On: {when}\n\n"
            f"```\n{examples}\n```\n"
        )
    return _DOCS_HEADER + "\n".join(sections) + _DOCS_RULES


_ARGUMENTS_DOC: Mapping[Arguments, str] = MappingProxyType(
    {
        Arguments.NONE: "none (anything after it is ignored)",
        Arguments.OPTIONAL: "optional",
        Arguments.REQUIRED: "required",
    }
)

_STAGE_DOC: Mapping[Stage, str] = MappingProxyType(
    {
        Stage.REVIEW: "open pull requests",
        Stage.CANARY: "merged pull requests: their canary rollout",
        Stage.ANY: "open and closed pull requests",
    }
)

_DOCS_HEADER = """\
# Commands

<!-- Generated by bot.commands.table.render_docs(); edit the table there, not this file. -->

Shipyard takes commands from pull request comments, review bodies, review comments and Slack.
A command means the same everywhere and is checked against the exact head commit it was given for.

"""

_DOCS_RULES = """
## The canary commands

`/rollback`, `/pause`, `/resume`, `/promote` and `/ack` act on the canary rollout that starts
when a pull request merges; on an open pull request they are refused. They never change traffic
themselves: each records a request that the rollout carries out at its next check (within a
minute), where it also shows the result (the check run, the report comment and Slack). A rollback
asked for is never overridden by a later `/pause`, `/resume` or `/promote`. Stopping a canary
(`/rollback`, `/pause`) is open to everyone with write access; `/promote` skips the remaining
steps and is open only to `canary.promote_approvers` (when that list is empty,
`review.approvers`). In Slack the promotion message shows **Pause** and **Roll back** while a
canary runs, and **Acknowledge** after a rollback or pause that paged on-call.
## How commands are recognised

- A command starts its own line: `/name`, then a space or the end of the line; anything after
  the space is its text. At most 3 spaces may come before it. Case does not matter.
- Only the commands above count: `/approved`, `/blockchain` or a path like `/usr/bin` are text.
- A command counts only where the rendered comment shows it as ordinary text. It is ignored in
  code blocks (fenced or indented), inline code, quotes (`> /approve`), tables, HTML comments
  (`<!-- /approve -->`, also across lines), and `<pre>`/`<code>` elements.
- A line right below a quote, with no blank line in between, is part of the quote and is ignored:
  leave a blank line after quoting.
- A command inside `<details>` counts.
- Several commands in one comment run in order. Edited and deleted comments, and comments by bots,
  run nothing.
"""
