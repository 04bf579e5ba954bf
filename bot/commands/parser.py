"""The one parser for all ChatOps commands: a command runs only where a reader sees it.

Rules (Kubernetes Prow's, minus the bugs where it ran commands found in code blocks and HTML
comments, prow#432 and knative/serving#764):

- A command is a known ``/name`` at the start of a source line, after at most 3 spaces (as in
  Markdown; a tab or 4+ spaces make the line code or continuation text), followed by whitespace
  or the end of the line. The name is case-insensitive; ``args`` is the rest of the line, trimmed.
  Unknown words (``/approved``, ``/blockchain``, ``/usr/bin``) are not commands.
- The line must be rendered as ordinary text: the comment is parsed as CommonMark (the
  specification GitHub's renderer follows), and a command counts only when its line starts the
  text of a paragraph or heading (also inside list items and ``<details>``). So it is ignored in
  fenced code (an unclosed fence runs to the end), indented code, inline code (also spanning
  lines), block quotes at any depth, tables, HTML comments (also spanning lines) and the
  ``<pre>``/``<code>``/``<script>``/``<style>``/``<textarea>`` elements of raw HTML blocks.
- A line right below a quote without a blank line in between continues the quote (Markdown's
  "lazy continuation"), is shown inside it, and is therefore ignored too.
- Windows and old Mac line endings and a leading byte-order mark are accepted.
- Argument checks (a ``/block`` needs a reason) belong to ``bot.commands.table.validate``: here a
  bare ``/block`` still parses, with empty ``args``, so the caller can say what is missing.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token


class CommandName(StrEnum):
    """Every command the bot knows, available or announced."""

    APPROVE = "approve"
    BLOCK = "block"
    UNBLOCK = "unblock"
    RETEST = "retest"
    STATUS = "status"
    HELP = "help"
    ROLLBACK = "rollback"
    PAUSE = "pause"
    RESUME = "resume"
    PROMOTE = "promote"
    ACK = "ack"


@dataclass(frozen=True)
class Command:
    """One command found in a comment."""

    name: CommandName
    args: str
    line: int  # 1-based, counted in the comment as written
    raw: str  # the command's line as written, trimmed


_KNOWN = frozenset(CommandName)
_TEXT_BLOCKS = frozenset({"paragraph_open", "heading_open"})  # not table cells
_CANDIDATE = re.compile(
    r"(?P<indent> {0,3})/(?P<name>[A-Za-z][A-Za-z0-9_-]*)(?:[ \t](?P<args>.*))?"
)

# Each candidate line's "/" is swapped for a marker carrying its index, then the comment is parsed
# as Markdown: a marker that ends up starting a text run of a paragraph is a live command.
# Private-use characters cannot change the parse, and any the author typed are neutralised first.
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"
_MARK_AT_TEXT_START = re.compile(f"{_MARK_OPEN}(\\d+){_MARK_CLOSE}")
_MARK_AT_LINE_START = re.compile(f"^ {{0,3}}{_MARK_OPEN}(\\d+){_MARK_CLOSE}", re.MULTILINE)

# Parts of a raw HTML block whose text is not shown as text. Every alternative that can span lines
# also stops at the end, and unquoted tag text stops at "<", which keeps the scan linear.
_HTML_HIDDEN = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(pre|code|script|style|textarea)\b.*?(?:</\1\s*>|\Z)"
    r"|<!\[CDATA\[.*?(?:\]\]>|\Z)"
    r"|<[!?][^>]*(?:>|\Z)"
    r"|</?[A-Za-z][^\s/<>]*(?:\"[^\"]*(?:\"|\Z)|'[^']*(?:'|\Z)|[^'\"<>])*(?:>|\Z)",
    re.DOTALL | re.IGNORECASE,
)


def parse_commands(text: str) -> list[Command]:
    """Return the commands a reader sees at the start of a line of ``text``, in order."""
    lines = _normalise(text).split("\n")
    candidates: dict[int, re.Match[str]] = {}
    marked = list(lines)
    for index, line in enumerate(lines):
        match = _CANDIDATE.fullmatch(line)
        if match is not None and match["name"].lower() in _KNOWN:
            candidates[index] = match
            after_slash = line[match.end("indent") + 1 :]
            marked[index] = f"{match['indent']}{_MARK_OPEN}{index}{_MARK_CLOSE}{after_slash}"
    if not candidates:
        return []
    live = _live_marks(_markdown().parse("\n".join(marked))) & candidates.keys()
    return [_command(candidates[index], line=index + 1) for index in sorted(live)]


def _normalise(text: str) -> str:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return text.replace(_MARK_OPEN, "\ufffd").replace(_MARK_CLOSE, "\ufffd")


def _command(match: re.Match[str], *, line: int) -> Command:
    return Command(
        name=CommandName(match["name"].lower()),
        args=(match["args"] or "").strip(),
        line=line,
        raw=match.group(0).strip(),
    )


@cache
def _markdown() -> MarkdownIt:
    # GitHub renders GitHub Flavored Markdown: CommonMark with raw HTML, plus tables.
    return MarkdownIt("commonmark").enable("table")


def _live_marks(tokens: list[Token]) -> set[int]:
    """Indices of the marks that start rendered text lines outside quotes, code and tables."""
    live: set[int] = set()
    quote_depth = 0
    for position, token in enumerate(tokens):
        if token.type == "blockquote_open":
            quote_depth += 1
        elif token.type == "blockquote_close":
            quote_depth -= 1
        elif quote_depth > 0:
            continue
        elif token.type == "inline" and tokens[position - 1].type in _TEXT_BLOCKS:
            live.update(_marks_starting_text(token))
        elif token.type == "html_block":
            live.update(_marks_visible_in_html(token.content))
    return live


def _marks_starting_text(inline: Token) -> set[int]:
    # Inline code, inline HTML (comments) and link destinations keep their marks inside
    # their own tokens; only a plain text run can start with one.
    found: set[int] = set()
    for child in inline.children or []:
        if child.type == "text" and (match := _MARK_AT_TEXT_START.match(child.content)):
            found.add(int(match[1]))
    return found


def _marks_visible_in_html(html: str) -> set[int]:
    hidden = [match.span() for match in _HTML_HIDDEN.finditer(html)]  # sorted, disjoint
    starts = [start for start, _ in hidden]
    visible: set[int] = set()
    for match in _MARK_AT_LINE_START.finditer(html):
        at = match.start(1)
        before = bisect_right(starts, at) - 1  # the last hidden part starting at or before it
        if before < 0 or hidden[before][1] <= at:
            visible.add(int(match[1]))
    return visible
