"""Parse untrusted documents within bounds: size, nesting depth, and no YAML aliases.

A 481-byte YAML of nested aliases ("billion laughs") expands to gigabytes, and a JSON of 100,000
`[` makes the standard parser raise RecursionError. Every document a registry supplies
(config.yaml, eval_results.json, CHANGELOG.md, .shipyard.yml, data_manifest.txt) and every model
directory as a whole is read through here; a refusal is a `DocumentError` naming the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

MAX_DOCUMENT_BYTES = 1024 * 1024  # config.yaml, eval_results.json, .shipyard.yml
MAX_TEXT_BYTES = 1024 * 1024  # CHANGELOG.md
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # data_manifest.txt may list many row ids
MAX_DEPTH = 32
MAX_MODEL_FILES = 1_000
MAX_MODEL_BYTES = 2 * 1024**3  # held in memory while checked; one LFS object may be 2 GiB


class DocumentError(ValueError):
    """A document could not be parsed or validated; the message names file and line."""


def _size(data: str | bytes) -> int:
    return len(data.encode("utf-8")) if isinstance(data, str) else len(data)


def check_size(data: str | bytes, *, source: str, max_bytes: int) -> None:
    """Refuse a document larger than `max_bytes`."""
    size = _size(data) if len(data) * 4 > max_bytes else len(data)  # skip encoding when small
    if size > max_bytes:
        raise DocumentError(
            f"{source}: {size:,} bytes is over the {max_bytes:,}-byte limit for this file"
        )


def read_text(data: bytes, *, source: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Bytes as text (invalid UTF-8 replaced), refused above `max_bytes`."""
    check_size(data, source=source, max_bytes=max_bytes)
    return data.decode("utf-8", errors="replace")


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and nesting deeper than `max_depth` while composing."""

    def __init__(self, stream: str, *, source: str, max_depth: int) -> None:
        super().__init__(stream)
        self._source = source
        self._max_depth = max_depth
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
            raise DocumentError(
                f"{self._source}: line {line}: YAML aliases (*name) are not allowed; "
                "write the value out"
            )
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
                raise DocumentError(
                    f"{self._source}: line {line}: nested deeper than {self._max_depth} levels"
                )
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


_MAX_QUOTED_LINE = 120


def _yaml_syntax_message(exc: yaml.MarkedYAMLError, text: str, source: str) -> str:
    """Where the syntax error really is, with that line quoted.

    PyYAML reports an unclosed bracket or quote where it gave up, often the end of the file;
    the place the construct started (its context mark) is what the author needs to see.
    """
    problem, context = exc.problem_mark, exc.context_mark
    at_end = problem is None or problem.index >= len(text.rstrip())
    mark = context if context is not None and at_end else problem
    if mark is None:
        return f"{source}: invalid YAML: {exc.problem or exc.context or 'syntax error'}"
    what = exc.problem or "invalid YAML"
    if exc.context and mark is context:
        what = f"{exc.context} that starts here: {what}"
    elif exc.context and context is not None and context.line != mark.line:
        what = f"{what} ({exc.context} started on line {context.line + 1})"
    lines = text.splitlines()
    quoted = lines[mark.line] if mark.line < len(lines) else ""
    if len(quoted) > _MAX_QUOTED_LINE:
        quoted = quoted[: _MAX_QUOTED_LINE - 1] + "…"
    message = f"{source}: line {mark.line + 1}, column {mark.column + 1}: {what}"
    return message + (f"\n    {mark.line + 1} | {quoted}" if quoted.strip() else "")


def load_yaml(
    text: str,
    *,
    source: str,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
) -> tuple[yaml.Node | None, Any]:
    """The composed node (for line numbers) and the safe-loaded data of one YAML document."""
    check_size(text, source=source, max_bytes=max_bytes)
    loader = _BoundedLoader(text, source=source, max_depth=max_depth)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise DocumentError(_yaml_syntax_message(exc, text, source)) from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source}: invalid YAML ({type(exc).__name__})") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of 10,000 digits
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError(f"{source}: a value cannot be read ({type(exc).__name__})") from None
    finally:
        loader.dispose()
    return node, data


# Strings (skipped whole, escapes included) or brackets: enough to measure JSON nesting.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth(text: str, *, limit: int) -> int:
    """Nesting depth of a JSON text, counted without recursion; stops once over `limit`."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        bracket = match.group()
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif bracket in "]}":
            depth -= 1
    return deepest


def load_json(
    text: str,
    *,
    source: str,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Strict JSON within size and depth limits (never a RecursionError)."""
    check_size(text, source=source, max_bytes=max_bytes)
    if json_depth(text, limit=max_depth) > max_depth:
        raise DocumentError(f"{source}: nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{source}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 10,000 digits
        raise DocumentError(f"{source}: a value cannot be read ({type(exc).__name__})") from None


def check_model_directory(
    sizes: Iterable[int],
    *,
    max_files: int = MAX_MODEL_FILES,
    max_bytes: int = MAX_MODEL_BYTES,
) -> str | None:
    """Why a model directory with files of these sizes is too large to read, or None."""
    count = total = 0
    for size in sizes:
        count += 1
        total += size
    if count > max_files:
        return f"the model directory has {count:,} files; the limit is {max_files:,}"
    if total > max_bytes:
        return f"the model directory holds {total:,} bytes; the limit is {max_bytes:,}"
    return None


__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_MANIFEST_BYTES",
    "MAX_MODEL_BYTES",
    "MAX_MODEL_FILES",
    "MAX_TEXT_BYTES",
    "DocumentError",
    "check_model_directory",
    "check_size",
    "json_depth",
    "load_json",
    "load_yaml",
    "read_text",
]
