"""`shipyard evaluate` keeps compiled report templates in its cache directory: a fresh process
loads them instead of compiling, and renders the same report; a cache it cannot use changes
nothing but the time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from report_templates import cache_compiled_templates, environment

ROOT = Path(__file__).resolve().parent.parent

RENDER = """
import hashlib, sys
from pathlib import Path
from report_templates import cache_compiled_templates, environment
from evaluators.rendering.render import render_html
from tests.report_factory import make_report
if sys.argv[1] != "-":
    cache_compiled_templates(Path(sys.argv[1]))
print(hashlib.sha256(render_html(make_report()).encode()).hexdigest())
"""


def _render_in_fresh_process(cache: str) -> str:
    run = subprocess.run(
        [sys.executable, "-c", RENDER, cache], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


def test_a_fresh_process_loads_the_compiled_templates_and_renders_the_same_report(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "templates"
    without = _render_in_fresh_process("-")
    first = _render_in_fresh_process(str(cache))  # compiles, and keeps what it compiled
    entries = sorted(cache.glob("__jinja2_*.cache"))
    assert entries
    stamps = [entry.stat().st_mtime_ns for entry in entries]
    second = _render_in_fresh_process(str(cache))  # loads
    assert first == second == without
    assert [entry.stat().st_mtime_ns for entry in entries] == stamps  # read, not rewritten


def test_a_cache_directory_that_cannot_be_made_is_ignored(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache would go")
    before = environment().bytecode_cache
    cache_compiled_templates(blocked / "templates")
    assert environment().bytecode_cache is before
