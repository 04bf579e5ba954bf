"""GitHub's OpenAPI subset: look up operations, their schemas and examples, and validate JSON."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from bot.sandbox.github.fixture_files import github_fixture

DEFAULT_SUBSET_PATH = github_fixture("openapi-subset.json")

MAX_MESSAGE = 200
_SCHEMA_MAP_KEYS = ("properties", "patternProperties")
_SCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf")
_SCHEMA_ONE_KEYS = ("items", "additionalProperties", "not")


def to_json_schema(schema: Any) -> Any:
    """Translate an OpenAPI 3.0 schema into JSON Schema (``nullable: true`` admits ``null``)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [to_json_schema(sub) for sub in value]
        elif key in _SCHEMA_ONE_KEYS:
            out[key] = to_json_schema(value)
        elif key not in ("nullable", "example", "description"):
            out[key] = value
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def template_of(route_path: str) -> str:
    """Return the OpenAPI path template of a Starlette route path (drops ``:path`` converters)."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route_path)


@dataclass(frozen=True)
class Operation:
    """One operation of the subset."""

    method: str
    path: str
    spec: Mapping[str, Any] = field(repr=False)

    @property
    def operation_id(self) -> str:
        """GitHub's operation id, e.g. ``pulls/get``."""
        return str(self.spec.get("operationId", ""))

    def request_schema(self) -> dict[str, Any] | None:
        """JSON Schema of the ``application/json`` request body, if the operation takes one."""
        body = self.spec.get("requestBody")
        if not body:
            return None
        schema = body["content"].get("application/json", {}).get("schema")
        return None if schema is None else dict(to_json_schema(schema))

    def response_schema(self, status: int) -> dict[str, Any] | None:
        """JSON Schema of the ``application/json`` response for ``status``, if documented."""
        content = self._json_content(status)
        if content is None or "schema" not in content:
            return None
        return dict(to_json_schema(content["schema"]))

    def response_example(self, status: int, name: str | None = None) -> Any:
        """A deep copy of a documented JSON response example (the first one unless ``name``)."""
        content = self._json_content(status)
        if content is None or not content.get("examples"):
            raise KeyError(f"no example for {self.method.upper()} {self.path} {status}")
        examples: dict[str, Any] = content["examples"]
        chosen = examples[name] if name is not None else next(iter(examples.values()))
        return copy.deepcopy(chosen["value"])

    def documented_statuses(self) -> set[int]:
        """Status codes this operation documents."""
        return {int(code) for code in self.spec.get("responses", {}) if code.isdigit()}

    def _json_content(self, status: int) -> dict[str, Any] | None:
        response = self.spec.get("responses", {}).get(str(status))
        if response is None:
            return None
        content: dict[str, Any] | None = response.get("content", {}).get("application/json")
        return content


class OpenApiSubset:
    """The committed subset of GitHub's REST description."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self._validators: dict[tuple[str, str, str], Draft7Validator] = {}

    @property
    def version(self) -> str:
        """Version of ``@octokit/openapi`` the subset was taken from."""
        return str(self.document["info"]["version"])

    def operations(self) -> list[Operation]:
        """Every operation of the subset."""
        return [
            Operation(method=method, path=path, spec=spec)
            for path, item in self.document["paths"].items()
            for method, spec in item.items()
        ]

    def has(self, method: str, path: str) -> bool:
        """Whether the subset holds ``method`` on the path template ``path``."""
        return method.lower() in self.document["paths"].get(path, {})

    def operation(self, method: str, path: str) -> Operation:
        """The operation for ``method`` on the path template ``path`` (KeyError when absent)."""
        spec = self.document["paths"][path][method.lower()]
        return Operation(method=method.lower(), path=path, spec=spec)

    def request_errors(self, method: str, path: str, body: Any) -> list[str]:
        """Messages for every way ``body`` violates the operation's request schema."""
        validator = self._validator(method, path, "request")
        return [] if validator is None else _messages(validator, body)

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Messages for every way ``body`` violates the documented response schema."""
        validator = self._validator(method, path, str(status))
        return [] if validator is None else _messages(validator, body)

    def _validator(self, method: str, path: str, which: str) -> Draft7Validator | None:
        key = (method.lower(), path, which)
        if key not in self._validators:
            operation = self.operation(method, path)
            schema = (
                operation.request_schema()
                if which == "request"
                else operation.response_schema(int(which))
            )
            if schema is None:
                return None
            self._validators[key] = Draft7Validator(schema)
        return self._validators[key]


def _messages(validator: Draft7Validator, body: Any) -> list[str]:
    # jsonschema quotes the offending value; keep messages short when that value is huge.
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<body>'}: "
        + (
            error.message
            if len(error.message) <= MAX_MESSAGE
            else error.message[:MAX_MESSAGE] + "…"
        )
        for error in validator.iter_errors(body)
    ]


@cache
def load_subset(path: Path = DEFAULT_SUBSET_PATH) -> OpenApiSubset:
    """Load (once per path) the committed OpenAPI subset."""
    return OpenApiSubset(json.loads(path.read_text(encoding="utf-8")))
