"""Jinja2 templates for the PR comment, check run summaries and the HTML report."""

from __future__ import annotations

import contextlib
import functools
import os
from importlib import resources
from pathlib import Path

import jinja2
from jinja2.loaders import split_template_path

from evaluators import wording


def _load(name: str) -> str | None:
    # Read through importlib.resources so templates are found inside an installed wheel or zip.
    resource = resources.files(__name__).joinpath(*split_template_path(name))
    if not resource.is_file():
        return None
    return resource.read_text(encoding="utf-8")


# Jinja passes filter arguments positionally; the wording functions take them by keyword.
def _markdown_text(value: object, max_length: int | None = None) -> str:
    return wording.markdown_text(value, max_length=max_length)


def _number(value: float | None, decimals: int | None = None) -> str:
    return wording.number(value, decimals=decimals)


def _signed(value: float | None, decimals: int | None = None) -> str:
    return wording.signed(value, decimals=decimals)


def _percent(value: float | None, decimals: int = 1) -> str:
    return wording.percent(value, decimals=decimals)


def _truncate(value: object, max_length: int) -> str:
    return wording.truncate(value, max_length=max_length)


@functools.cache
def environment() -> jinja2.Environment:
    """The shared, read-only environment: HTML templates autoescape, Markdown ones use `| md`."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "html"), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        md=_markdown_text,
        num=_number,
        signed=_signed,
        pct=_percent,
        label=wording.metric_label,
        pvalue=wording.p_value,
        ms=wording.milliseconds,
        plural=wording.plural,
        truncate_text=_truncate,
        when=wording.timestamp,
    )
    return env


def cache_compiled_templates(directory: Path) -> None:
    """Keep compiled templates in `directory` (the command line's own cache): a fresh process
    then loads them instead of compiling (about 0.1 s for the HTML report). Jinja checks each
    entry against the template's source. Without a usable directory nothing changes."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return
    if os.access(directory, os.W_OK | os.X_OK):
        environment().bytecode_cache = _BestEffortCache(str(directory))


class _BestEffortCache(jinja2.FileSystemBytecodeCache):
    """A cache entry that cannot be written (a full disk, a directory made read-only since)
    costs the next run its compile time; it must not cost this run its report."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)
