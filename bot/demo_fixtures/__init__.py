"""What `shipyard demo` needs, shipped in the wheel so the demo runs from any directory.

In a checkout these are symbolic links into `fixtures/` (made by `fixtures/make_fixtures.py`,
with GitHub's descriptions from `fixtures/github/`); building the wheel copies the files.
"""

from __future__ import annotations

from pathlib import Path


def demo_fixtures_dir() -> Path:
    """The directory holding `registry/`, `benchmark/` and `github/`, as the demo reads them."""
    return Path(__file__).resolve().parent
