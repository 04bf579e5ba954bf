"""Untrusted documents are parsed within bounds: size, depth, no YAML aliases, never a crash."""

from __future__ import annotations

import time

import pytest

from evaluators.bounded import (
    DocumentError,
    check_model_directory,
    json_depth,
    load_json,
    load_yaml,
    read_text,
)
from evaluators.candidate import parse_claimed_results, parse_model_config
from evaluators.policy import PolicyError, parse_policy

# The "billion laughs": nine levels of nine aliases, under 500 bytes, ~10^9 strings expanded.
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} ["
        + ",".join([f"*{chr(ord('a') + i - 1)}"] * 9)
        + "]"
        for i in range(1, 9)
    ]
)


def test_the_billion_laughs_is_refused_in_milliseconds() -> None:
    assert len(BILLION_LAUGHS) < 500
    started = time.perf_counter()
    with pytest.raises(DocumentError, match="line 2: YAML aliases"):
        load_yaml(BILLION_LAUGHS, source="config.yaml")
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    "text",
    ["base: &b {x: 1}\nother:\n  <<: *b\n", "a: &x 1\nb: *x\n", "- &x [1]\n- *x\n"],
    ids=["a merge key uses an alias", "a scalar alias", "a sequence alias"],
)
def test_any_alias_is_refused(text: str) -> None:
    with pytest.raises(DocumentError, match="aliases"):
        load_yaml(text, source="x.yaml")


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("[" * 100_000 + "]" * 100_000, "flow sequences"),
        ("{a: " * 50_000 + "1" + "}" * 50_000, "flow mappings"),
        ("".join(f"{'  ' * i}k:\n" for i in range(200)), "block mappings"),
    ],
    ids=["deep flow sequences", "deep flow mappings", "deep block mappings"],
)
def test_deep_yaml_is_refused_quickly_without_recursion_error(text: str, source: str) -> None:
    started = time.perf_counter()
    with pytest.raises(DocumentError, match="nested deeper than 32 levels"):
        load_yaml(text, source=source, max_bytes=10**7)
    assert time.perf_counter() - started < 2


def test_yaml_within_the_depth_limit_loads() -> None:
    _, data = load_yaml("[" * 30 + "]" * 30, source="x.yaml")
    assert data == [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 40 + "1" + "}" * 40],
    ids=["unclosed brackets", "closed brackets", "objects just over the limit"],
)
def test_deep_json_is_a_clear_failure_never_recursion_error(text: str) -> None:
    with pytest.raises(DocumentError, match="nested deeper than 32 levels"):
        load_json(text, source="eval_results.json", max_bytes=10**7)


def test_brackets_inside_json_strings_do_not_count_as_depth() -> None:
    text = '{"notes": "' + "[" * 1000 + '\\" {", "metrics": {"auc": 0.9}}'
    assert json_depth(text, limit=32) == 2
    assert load_json(text, source="x.json")["metrics"] == {"auc": 0.9}


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (lambda t: load_yaml(t, source="config.yaml"), "a: " + "x" * 2_000_000),
        (lambda t: load_json(t, source="eval_results.json"), '"' + "x" * 2_000_000 + '"'),
        (lambda t: read_text(t.encode(), source="CHANGELOG.md"), "x" * 2_000_000),
    ],
    ids=["a large YAML document", "a large JSON document", "a large text file"],
)
def test_documents_over_the_size_limit_are_refused(parse: object, text: str) -> None:
    with pytest.raises(DocumentError, match="over the 1,048,576-byte limit"):
        parse(text)  # type: ignore[operator]


@pytest.mark.parametrize(
    "text",
    ["n: " + "9" * 10_000, "n: !!python/object/apply:os.system ['id']", "a: [1,\n"],
    ids=["a huge integer", "a python tag", "broken syntax"],
)
def test_unreadable_yaml_is_a_document_error(text: str) -> None:
    with pytest.raises(DocumentError):
        load_yaml(text, source="x.yaml")


def test_a_huge_json_integer_is_a_document_error() -> None:
    with pytest.raises(DocumentError, match="cannot be read"):
        load_json('{"n": ' + "9" * 10_000 + "}", source="x.json")


@pytest.mark.parametrize(
    ("parse", "error"),
    [
        (parse_model_config, DocumentError),
        (parse_claimed_results, DocumentError),
        (parse_policy, PolicyError),
    ],
    ids=["config.yaml", "eval_results.json", ".shipyard.yml"],
)
def test_every_registry_document_parser_is_bounded(parse: object, error: type) -> None:
    with pytest.raises(error):
        parse(BILLION_LAUGHS if parse is not parse_claimed_results else "[" * 100_000)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("sizes", "words"),
    [
        ([1] * 1_001, "1,001 files; the limit is 1,000"),
        ([2 * 1024**3, 1], "bytes; the limit is"),
    ],
    ids=["too many files", "too many bytes"],
)
def test_a_model_directory_over_its_caps_is_named(sizes: list[int], words: str) -> None:
    assert words in (check_model_directory(sizes) or "")


def test_a_model_directory_within_its_caps_passes() -> None:
    assert check_model_directory([10_000_000, 200, 300]) is None
