"""Hostile strings stay text in GitHub Markdown, code spans and Slack mrkdwn."""

from __future__ import annotations

import re

import markdown_it
import pytest

from evaluators.escaping import (
    code_span,
    markdown,
    markdown_to_mrkdwn,
    markdown_to_plain,
    mrkdwn,
    mrkdwn_code,
)

HOSTILE = [
    "![x](http://evil/x.png)",
    "[link](javascript:alert(1))",
    "@acme/everyone please look",
    '<img src="http://evil/x.png" onerror=alert(1)>',
    "<details open><summary>hi</summary>",
    "``` code ``` and ` one",
    "| a | b |\n|---|---|\n| c | d |",
    "line one\n\n# heading\n> quote",
    "<!channel> <@U123> <https://evil|click>",
    "**bold** _it_ ~~gone~~ $x$",
    "\\[escaped\\](http://evil)",
    "snake_case __init__ _x_ a__b _",
]


def _render(text: str) -> str:
    # CommonMark plus GFM tables and strikethrough (autolinking bare URLs is not markup we add).
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_renders_as_the_same_characters_and_no_markup(hostile: str) -> None:
    html = _render("- " + markdown(hostile))
    assert "<img" not in html and "<a " not in html and "<strong" not in html
    assert "<em" not in html and "<s>" not in html and "<table" not in html
    assert "<h1" not in html and "<blockquote" not in html and "<details" not in html
    # What a reader sees is the original text (whitespace collapsed, @ followed by a ZWSP).
    seen = re.sub(r"<[^>]+>", "", html).strip()
    seen = seen.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    seen = seen.replace("&amp;", "&").replace("\u200b", "")
    assert seen == " ".join(hostile.split())


@pytest.mark.parametrize(
    "mention", ["@acme/everyone", "@octocat", "hi @org/team!"], ids=["team", "user", "inline"]
)
def test_a_mention_gets_a_zero_width_space_so_nobody_is_notified(mention: str) -> None:
    assert re.search(r"@[A-Za-z]", markdown(mention)) is None


@pytest.mark.parametrize(
    "text",
    ["a ` b", "``x``", "`", "ends with `", "``` fence ```", "", "a | b"],
    ids=[
        "a single backtick",
        "a double backtick run",
        "only a backtick",
        "a trailing backtick",
        "a triple fence",
        "nothing",
        "a pipe",
    ],
)
def test_backticks_cannot_close_a_code_span(text: str) -> None:
    html = _render(code_span(text))
    assert html.count("<code>") == 1 and html.count("</code>") == 1
    inside = html.split("<code>")[1].split("</code>")[0].replace("&amp;", "&")
    assert inside == text.strip() or inside == text or (not text and inside.strip() == "")


def test_a_pipe_in_a_table_code_span_does_not_split_the_cell() -> None:
    table = "| a | b |\n|---|---|\n| " + code_span("x | y", in_table=True) + " | z |"
    html = _render(table)
    assert html.count("<td>") == 2
    assert "<code>x | y</code>" in html


@pytest.mark.parametrize(
    "hostile",
    ["<!channel>", "<!here>", "<@U123>", "<#C123|general>", "<https://evil|click>", "@channel"],
)
def test_slack_mentions_and_links_stay_text(hostile: str) -> None:
    out = mrkdwn(hostile)
    assert "<" not in out and ">" not in out
    assert "@c" not in out and "@h" not in out


def test_a_backtick_cannot_end_a_slack_code_span() -> None:
    out = mrkdwn_code("a ` <!channel>")
    assert out.count("`") == 2 and "&lt;!channel&gt;" in out


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_markdown_answer_shown_in_slack_keeps_the_text_and_no_slack_markup(hostile: str) -> None:
    out = markdown_to_mrkdwn(f"Blocked: {markdown(hostile)}. Until {code_span(hostile)}.")
    assert "<" not in out and ">" not in out
    assert re.search(r"@[A-Za-z]", out) is None
    # Slack has no backslash escapes: it shows the characters themselves, as written.
    assert out.count("\\") == 2 * hostile.count("\\")


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_audit_log_keeps_what_a_reader_saw_without_escapes(hostile: str) -> None:
    answer = f"Blocked: {markdown(hostile)}. Until {code_span(hostile)}."
    flat = " ".join(hostile.split())
    assert markdown_to_plain(answer) == f"Blocked: {flat}. Until {flat}."


@pytest.mark.parametrize("word", ["entity_type", "public_sector", "x__y", "review_window_opened"])
def test_underscores_inside_a_word_are_left_as_written(word: str) -> None:
    assert markdown(word) == word
