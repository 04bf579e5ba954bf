"""Line-precise validation messages for YAML and JSON documents from a registry."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from evaluators.bounded import MAX_DOCUMENT_BYTES, DocumentError, load_json, load_yaml

LinePath = tuple[str | int, ...]


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


def load_yaml_with_lines(
    text: str, *, source: str, max_bytes: int = MAX_DOCUMENT_BYTES
) -> tuple[Any, dict[LinePath, int]]:
    """Load YAML safely and within bounds; remember the line each key or item starts on."""
    node, data = load_yaml(text, source=source, max_bytes=max_bytes)
    lines: dict[LinePath, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def load_json_with_lines(
    text: str, *, source: str, max_bytes: int = MAX_DOCUMENT_BYTES
) -> tuple[Any, dict[LinePath, int]]:
    """Load JSON strictly and within bounds, then map keys to lines (JSON is valid YAML)."""
    data = load_json(text, source=source, max_bytes=max_bytes)
    try:
        _, lines = load_yaml_with_lines(text, source=source, max_bytes=max_bytes)
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


__all__ = [
    "DocumentError",
    "LinePath",
    "format_validation_error",
    "load_json_with_lines",
    "load_yaml_with_lines",
]


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
