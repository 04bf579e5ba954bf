"""Make untrusted text inert where it is shown: GitHub Markdown, code spans, Slack mrkdwn.

Every string a person or a repository supplied (command text, block reasons, approve notes,
file and model names, CHANGELOG excerpts, error messages) goes through one of these before it
reaches a comment, a check run or a Slack message. HTML is escaped by jinja2's autoescape.
"""

from __future__ import annotations

import re

# Only what can change structure inline: emphasis, code, links, images, tables, strikethrough,
# math, and `!` (the image marker). HTML is neutralised by entities, not backslashes. A run of
# `_` between letters or digits (`entity_type`) cannot open or close emphasis: left as written.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]|~$!]|_+")
_MARKDOWN_ESCAPED = re.compile(r"\\([\\`*_\[\]|~$!])")
_WHITESPACE = re.compile(r"\s+")
_BACKTICK_RUN = re.compile(r"`+")
_ZWSP = "\u200b"


def one_line(value: object, *, max_length: int | None = None) -> str:
    """Whitespace (newlines included) collapsed to single spaces, optionally cut with `…`."""
    text = _WHITESPACE.sub(" ", str(value)).strip()
    if max_length is not None and len(text) > max_length:
        text = text[: max_length - 1] + "…"
    return text


def _defang_mentions(text: str) -> str:
    # A zero-width space after @ keeps `@org/team` or `@someone` from notifying anyone.
    return text.replace("@", "@" + _ZWSP)


def _escape_special(match: re.Match[str]) -> str:
    run, text = match.group(), match.string
    if run[0] == "_":
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end()] if match.end() < len(text) else " "
        if before.isalnum() and after.isalnum():
            return run  # intraword: `entity_type` stays as written
    return "".join("\\" + char for char in run)


def markdown(value: object, *, max_length: int | None = None) -> str:
    """Text made inert for GitHub Markdown: no HTML, images, links, tables or mentions.

    Newlines collapse to spaces, so a value cannot end a table row or start a block.
    """
    text = one_line(value, max_length=max_length)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKDOWN_SPECIAL.sub(_escape_special, text)
    return _defang_mentions(text)


def code_span(value: object, *, max_length: int | None = None, in_table: bool = False) -> str:
    """`value` as one GitHub Markdown code span that no backtick run inside can close.

    The fence is one backtick longer than the longest run inside (CommonMark 6.1); inside a
    table a `|` must still be escaped or it would split the cell.
    """
    text = one_line(value, max_length=max_length)
    if in_table:
        text = text.replace("|", "\\|")
    runs = [len(run) for run in _BACKTICK_RUN.findall(text)]
    fence = "`" * (max(runs, default=0) + 1)
    if text.startswith("`") or text.endswith("`") or not text.strip():
        text = f" {text} "  # CommonMark strips one space each side, so the content is unchanged
    return f"{fence}{text}{fence}"


def mrkdwn(value: object, *, max_length: int | None = None) -> str:
    """Text made inert for Slack mrkdwn: `<!channel>`, `<@U123>`, `<url|x>` and @-names are text.

    Slack has no backslash escapes: `&`, `<`, `>` become entities, mentions get a zero-width
    space. Use it in text objects with `verbatim: true` so Slack does not auto-link names.
    """
    text = one_line(value, max_length=max_length)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _defang_mentions(text)


def mrkdwn_code(value: object, *, max_length: int | None = None) -> str:
    """`value` in a Slack code span; Slack cannot escape a backtick, so it becomes `ˋ`."""
    return "`" + mrkdwn(value, max_length=max_length).replace("`", "ˋ") + "`"


def markdown_to_mrkdwn(text: str) -> str:
    """A Markdown answer built with `markdown()`/`code_span()`, re-escaped for Slack.

    Outside code spans the Markdown escapes are undone first, so Slack shows the characters
    GitHub shows; code spans become Slack code spans. Then `&`, `<`, `>` are escaped for
    Slack and every @ gets its zero-width space.
    """
    out = []
    for is_code, part in _split_code_spans(text):
        if is_code:
            out.append("`" + _slack_entities(part).replace("`", "ˋ") + "`")
        else:
            out.append(_slack_entities(_unescape_markdown(part)).replace("**", "*"))
    return re.sub(f"@(?!{_ZWSP})", "@" + _ZWSP, "".join(out))


def markdown_to_plain(text: str) -> str:
    """The characters a reader of a `markdown()`/`code_span()` answer sees, for the audit log
    (which is escaped again wherever it is shown)."""
    parts = _split_code_spans(text)
    plain = "".join(part if is_code else _unescape_markdown(part) for is_code, part in parts)
    return plain.replace("@" + _ZWSP, "@")


def _split_code_spans(text: str) -> list[tuple[bool, str]]:
    """(is a code span, its text) pieces, honouring backslash escapes and fence lengths."""
    pieces: list[tuple[bool, str]] = []
    prose: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and _MARKDOWN_ESCAPED.match(text, i):
            prose.append(text[i : i + 2])  # an escaped character, never a code span's fence
            i += 2
            continue
        if char == "`":
            fence = _BACKTICK_RUN.match(text, i)
            assert fence is not None
            close = re.compile(f"(?<!`){fence.group()}(?!`)").search(text, fence.end())
            if close is not None:
                pieces.append((False, "".join(prose)))
                prose = []
                content = text[fence.end() : close.start()]
                if fence.group() != "`" and content.startswith(" ") and content.endswith(" "):
                    content = content[1:-1]
                pieces.append((True, content))
                i = close.end()
                continue
            prose.append(fence.group())
            i = fence.end()
            continue
        prose.append(char)
        i += 1
    pieces.append((False, "".join(prose)))
    return pieces


def _slack_entities(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unescape_markdown(text: str) -> str:
    plain = _MARKDOWN_ESCAPED.sub(r"\1", text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


__all__ = [
    "code_span",
    "markdown",
    "markdown_to_mrkdwn",
    "markdown_to_plain",
    "mrkdwn",
    "mrkdwn_code",
    "one_line",
]
