"""Line-precise validation messages for YAML and JSON documents from a registry."""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

LinePath = tuple[str | int, ...]


class DocumentError(ValueError):
    """A document could not be parsed or validated; the message names file and line."""


def _walk(node: yaml.Node, path: LinePath, lines: dict[LinePath, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


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


def load_yaml_with_lines(text: str, *, source: str) -> tuple[Any, dict[LinePath, int]]:
    """Load YAML safely and remember the line each key or item starts on."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        raise DocumentError(_yaml_syntax_message(exc, text, source)) from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source}: invalid YAML ({type(exc).__name__})") from None
    lines: dict[LinePath, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def load_json_with_lines(text: str, *, source: str) -> tuple[Any, dict[LinePath, int]]:
    """Load JSON strictly, then map keys to lines (JSON is valid YAML for that purpose)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{source}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    try:
        _, lines = load_yaml_with_lines(text, source=source)
    except DocumentError:
        lines = {}
    return data, lines


def _line_for(loc: LinePath, lines: dict[LinePath, int]) -> int | None:
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def format_validation_error(exc: Exception, source: str, lines: dict[LinePath, int]) -> str:
    """One line per problem: `file: line N: field.path: message`."""
    if not isinstance(exc, ValidationError):
        return f"{source}: {exc}"
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc) or "(document)"
        line = _line_for(loc, lines)
        where = f"line {line}: " if line else ""
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append(f"{source}: {where}{dotted}: {message}")
    return "\n".join(out)
