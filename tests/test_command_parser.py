"""parse_commands: a command runs only where a reader of the rendered comment sees it."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.commands.parser import Command, CommandName, parse_commands

A, B, U, R, S, H = (
    CommandName.APPROVE,
    CommandName.BLOCK,
    CommandName.UNBLOCK,
    CommandName.RETEST,
    CommandName.STATUS,
    CommandName.HELP,
)


def case(sentence: str, text: str, *expected: tuple[CommandName, str]) -> Any:
    """One table row: what the comment says and which (command, args) it yields."""
    return pytest.param(text, list(expected), id=sentence)


CASES = [
    case("a bare approve is a command", "/approve", (A, "")),
    case(
        "approve with a note keeps the note",
        "/approve  looks good to me  ",
        (A, "looks good to me"),
    ),
    case(
        "block with a reason keeps the reason",
        "/block wait for the load test",
        (B, "wait for the load test"),
    ),
    case("block without a reason is parsed with empty args", "/block", (B, "")),
    case("uppercase APPROVE is a command", "/APPROVE", (A, "")),
    case(
        "mixed case Block is a command and its reason keeps its case",
        "/Block Not Yet",
        (B, "Not Yet"),
    ),
    case("three leading spaces are allowed", "   /retest", (R, "")),
    case("a tab after the name separates the note", "/approve\tnote", (A, "note")),
    case("approve on the line after text is a command", "LGTM, thanks!\n/approve", (A, "")),
    case("two commands in one comment come in order", "/approve\n/retest", (A, ""), (R, "")),
    case(
        "commands in separate paragraphs come in order",
        "/block flaky\n\nlater:\n/unblock",
        (B, "flaky"),
        (U, ""),
    ),
    case("approve starting a line of a list item counts", "- first point\n  /approve", (A, "")),
    case("approve underlined into a heading still counts", "/approve\n---", (A, "")),
    case(
        "approve inside details counts",
        "<details>\n<summary>Why</summary>\n/approve\n</details>",
        (A, ""),
    ),
    case(
        "approve inside details with blank lines counts",
        "<details>\n<summary>Why</summary>\n\n/approve\n\n</details>",
        (A, ""),
    ),
    case(
        "a command after a closed html comment counts", "<!-- a note to self -->\n/approve", (A, "")
    ),
    case("a command after a closed fence counts", "```\n/approve\n```\n/retest", (R, "")),
    case(
        "a command after a quote and a blank line counts", "> can you approve?\n\n/approve", (A, "")
    ),
    case("crlf line endings work", "LGTM\r\n/approve\r\n/retest\r\n", (A, ""), (R, "")),
    case("a bare carriage return ends a line too", "LGTM\r/status", (S, "")),
    case("a byte order mark before the command is ignored", "\ufeff/help", (H, "")),
    case(
        "a bare rollback parses so the table can ask for its reason",
        "/rollback",
        (CommandName.ROLLBACK, ""),
    ),
    case(
        "the canary commands are recognised with their text",
        "/rollback bad latency on mobile\n/PAUSE\n/resume\n/promote now\n/ack on it",
        (CommandName.ROLLBACK, "bad latency on mobile"),
        (CommandName.PAUSE, ""),
        (CommandName.RESUME, ""),
        (CommandName.PROMOTE, "now"),
        (CommandName.ACK, "on it"),
    ),
    case("a quoted rollback is ignored", "> /rollback bad latency\n\nShould we?"),
    case("a rollback in code is ignored", "`/rollback now`\n\n```\n/rollback now\n```"),
    case("acknowledge is not ack", "/acknowledge"),
    case("paused is not pause", "/paused for lunch"),
    # Not commands.
    case("an empty comment has no commands", ""),
    case("approve in the middle of a sentence is ignored", "I will /approve after lunch"),
    case("approved is not approve", "/approved"),
    case("blockchain is not block", "/blockchain is the future"),
    case("a path like usr bin is not a command", "/usr/bin/python is the interpreter"),
    case("approve glued to punctuation is not a command", "/approve."),
    case("an unknown command is not a command", "/lgtm"),
    case("four leading spaces make code not a command", "    /approve"),
    case("a tab before the command makes code not a command", "\t/approve"),
    case("a list item starting with approve is not a command", "- /approve"),
    case("quoted approve in a reply is ignored", "> /approve\n\nThanks!"),
    case("doubly quoted approve is ignored", ">> /approve"),
    case("nested quote with spaces is ignored", "> > /approve"),
    case(
        "a line right below a quote continues the quote and is ignored",
        "> can you approve?\n/approve",
    ),
    case("approve inside a fenced code block is ignored", "```\n/approve\n```"),
    case("approve inside a fence with an info string is ignored", "```bash\n/approve\n```"),
    case("approve inside a tilde fence is ignored", "~~~ text\n/approve\n~~~"),
    case("an unclosed fence runs to the end", "Try this:\n```\n/approve"),
    case("a shorter fence does not close a longer one", "````\n```\n/approve\n````"),
    case(
        "approve in a fence inside a list item is ignored",
        "- step\n\n    ```\n   /approve\n    ```",
    ),
    case("inline code approve is ignored", "`/approve`"),
    case("inline code spanning lines hides approve", "run `make\n/approve` first"),
    case("approve in an html comment is ignored", "<!-- /approve -->"),
    case("approve in an html comment spanning lines is ignored", "<!--\n/approve\n-->"),
    case(
        "approve in an inline html comment spanning lines is ignored", "Thanks <!--\n/approve\n-->"
    ),
    case(
        "approve in a comment inside an html block is ignored", "<div>\n<!--\n/approve\n-->\n</div>"
    ),
    case(
        "approve in pre inside an html block is ignored", "<div>\n<pre>\n/approve\n</pre>\n</div>"
    ),
    case(
        "approve on a line below a table is a table cell and is ignored",
        "| a | b |\n| - | - |\n/approve",
    ),
    case("approve as a link target on the next line is ignored", "[the docs](\n/approve )"),
    case(
        "private use characters cannot forge a command", "```\n/approve\n```\n\ue0001\ue001approve"
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse_commands(text: str, expected: list[tuple[CommandName, str]]) -> None:
    assert [(c.name, c.args) for c in parse_commands(text)] == expected


def test_a_command_knows_its_line_and_how_it_was_written() -> None:
    text = "Thanks!\r\n\r\n  /Block   waiting for data  \r\n"
    assert parse_commands(text) == [
        Command(
            name=CommandName.BLOCK, args="waiting for data", line=3, raw="/Block   waiting for data"
        )
    ]


# Property-style checks with seeded random text (hypothesis is not a dependency).
_PIECES = [
    "approve",
    "block",
    "/approve",
    "/block",
    "/usr/bin",
    " ",
    "  ",
    "\t",
    "`",
    "```",
    "~~~",
    ">",
    "> ",
    "<!--",
    "-->",
    "<details>",
    "<pre>",
    "*",
    "-",
    "1.",
    "|",
    "[x](",
    ")",
    "\\",
    "word",
    "LGTM",
    "/",
    "&amp;",
    "#",
    "\n",
    "\n",
    "\n",
    "\r\n",
    "\n\n",
]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 60)))


def _without_slash_lines(text: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line if not line.lstrip().startswith("/") else "x" + line for line in lines)


def test_random_text_without_a_line_starting_with_a_slash_has_no_command() -> None:
    rng = random.Random(20261124)
    for _ in range(400):
        text = _without_slash_lines(_random_text(rng))
        assert parse_commands(text) == [], text


def test_every_command_found_in_random_text_starts_its_line() -> None:
    rng = random.Random(7)
    for _ in range(400):
        text = _random_text(rng)
        lines = text.replace("\r\n", "\n").split("\n")
        for command in parse_commands(text):
            line = lines[command.line - 1]
            assert line.lstrip(" ").lower().startswith(f"/{command.name}"), text
            assert len(line) - len(line.lstrip(" ")) <= 3, text


def test_random_text_quoted_line_by_line_has_no_command() -> None:
    rng = random.Random(11)
    for _ in range(300):
        text = _random_text(rng) + "\n/approve\n"
        quoted = "\n".join(f"> {line}" for line in text.replace("\r\n", "\n").split("\n"))
        assert parse_commands(quoted) == [], quoted


def test_random_text_inside_a_fence_has_no_command() -> None:
    rng = random.Random(13)
    for _ in range(300):
        text = _random_text(rng) + "\n/approve\n"
        fence = "~" * (text.count("~") + 3)  # longer than any run of tildes inside
        assert parse_commands(f"{fence}\n{text}\n{fence}") == [], text


@pytest.mark.timeout(10)
def test_a_hostile_comment_of_github_s_maximum_size_is_parsed_quickly() -> None:
    # 65,536 characters is GitHub's limit for a comment body.
    hostile = "<div>\n" + "<a " * 10_000 + "'\n/approve\n" + "<!--" * 8_000
    assert len(hostile) <= 65_536
    assert parse_commands(hostile) == []
    many = "\n".join(["/approve"] * 8_000)
    assert len(parse_commands(many)) == 8_000
    tags_and_commands = "<div>\n" + "<b>\n/retest\n" * 5_000
    assert len(parse_commands(tags_and_commands)) == 5_000
