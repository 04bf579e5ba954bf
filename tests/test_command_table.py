"""The command table: usage errors, /help on GitHub and Slack, and docs/commands.md, all from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands.parser import Command, CommandName, parse_commands
from bot.commands.table import COMMANDS, MAX_ARGS_LENGTH, render_docs, render_help, validate

DOCS = Path(__file__).resolve().parent.parent / "docs/commands.md"
REGENERATE = (
    ".venv/bin/python -c 'from bot.commands.table import render_docs; "
    'print(render_docs(), end="")\' > docs/commands.md'
)


def _command(text: str) -> Command:
    (command,) = parse_commands(text)
    return command


def test_every_command_has_exactly_one_row() -> None:
    assert list(COMMANDS) == list(CommandName)
    assert all(name is spec.name for name, spec in COMMANDS.items())


def test_every_example_is_the_command_it_illustrates_and_is_valid() -> None:
    for spec in COMMANDS.values():
        for example in spec.examples:
            command = _command(example)
            assert command.name is spec.name
            assert validate(command) is None or not spec.available


VALIDATE_CASES = [
    pytest.param("/approve", None, id="approve without a note is fine"),
    pytest.param("/approve ship it", None, id="approve with a note is fine"),
    pytest.param("/block flaky benchmark", None, id="block with a reason is fine"),
    pytest.param("/unblock thanks", None, id="extra text after unblock is ignored"),
    pytest.param(
        "/block", "`/block <reason>`", id="block without a reason is refused with its usage"
    ),
    pytest.param("/BLOCK   ", "`/block <reason>`", id="block with only spaces is refused too"),
    pytest.param(
        "/rollback",
        "`/rollback <reason>`",
        id="rollback without a reason is refused with its usage",
    ),
    pytest.param("/rollback bad latency on mobile", None, id="rollback with a reason is fine"),
    pytest.param("/pause", None, id="pause needs no reason"),
    pytest.param("/ack", None, id="ack needs no note"),
    pytest.param("/promote", None, id="promote needs no reason"),
    pytest.param(
        "/ack " + "x" * (MAX_ARGS_LENGTH + 1), "too long", id="an ack note is bounded like others"
    ),
    pytest.param(
        "/approve " + "x" * (MAX_ARGS_LENGTH + 1), "too long", id="a note past the limit is refused"
    ),
]


@pytest.mark.parametrize(("text", "error_contains"), VALIDATE_CASES)
def test_validate(text: str, error_contains: str | None) -> None:
    error = validate(_command(text))
    if error_contains is None:
        assert error is None
    else:
        assert error is not None and error_contains in error


def test_github_help_is_a_table_of_every_available_command() -> None:
    help_text = render_help(surface="github")
    assert "| Command | What it does | Who may use it |" in help_text
    for spec in COMMANDS.values():
        assert (f"| `{spec.usage}` |" in help_text) is spec.available
    assert "approvers listed in .shipyard.yml" in help_text


@pytest.mark.parametrize("surface", ["github", "slack"])
def test_help_lists_the_canary_commands_and_who_may_promote(surface: str) -> None:
    help_text = render_help(surface=surface)  # type: ignore[arg-type]
    for usage in (
        "/rollback &lt;reason&gt;" if surface == "slack" else "/rollback <reason>",
        "/pause [reason]",
        "/resume",
        "/promote [reason]",
        "/ack [note]",
    ):
        assert f"`{usage}`" in help_text
    assert "canary.promote_approvers" in help_text
    assert "merged pull request's canary" in help_text


def test_slack_help_lists_slack_commands_with_angle_brackets_escaped() -> None:
    help_text = render_help(surface="slack")
    assert help_text.startswith("*Shipyard commands*")
    assert "`/block &lt;reason&gt;`" in help_text
    assert "<" not in help_text and "| ---" not in help_text
    shown = [s for s in COMMANDS.values() if s.available and s.in_slack]
    bullets = [line for line in help_text.splitlines() if line.startswith("• ")]
    assert len(bullets) == len(shown)
    for spec, bullet in zip(shown, bullets, strict=True):
        assert bullet.startswith(f"• `{spec.usage.replace('<', '&lt;').replace('>', '&gt;')}` — ")


@pytest.mark.parametrize("surface", ["github", "slack"])
def test_help_text_contains_no_runnable_command(surface: str) -> None:
    assert parse_commands(render_help(surface=surface)) == []  # type: ignore[arg-type]


def test_docs_describe_every_command_and_where_it_applies() -> None:
    docs = render_docs()
    for spec in COMMANDS.values():
        assert f"## `{spec.usage}`" in docs
    assert "(coming later)" not in docs
    rollback = docs.split("## `/rollback <reason>`")[1].split("## ")[0]
    assert "- On: merged pull requests" in rollback
    assert "- Text after the command: required" in rollback
    approve = docs.split("## `/approve [note]`")[1].split("## ")[0]
    assert "- On: open pull requests" in approve
    assert "## The canary commands" in docs


def test_docs_examples_are_shown_as_code_and_so_run_nothing() -> None:
    assert parse_commands(render_docs()) == []


def test_committed_docs_are_up_to_date() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_docs(), f"regenerate: {REGENERATE}"
