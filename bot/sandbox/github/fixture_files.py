"""Where the sandbox finds GitHub's published descriptions, kept in the repository's fixtures/.

From a checkout (editable install, tests) they sit beside the package; an installed wheel
carries them as `bot/demo_fixtures/github`; SHIPYARD_SANDBOX_FIXTURES names another place.
"""

from __future__ import annotations

import os
from pathlib import Path


def github_fixture(name: str) -> Path:
    candidates = [
        Path(os.environ["SHIPYARD_SANDBOX_FIXTURES"]) / name
        if "SHIPYARD_SANDBOX_FIXTURES" in os.environ
        else None,
        Path(__file__).resolve().parents[3] / "fixtures/github" / name,
        Path(__file__).resolve().parents[2] / "demo_fixtures/github" / name,
    ]
    for path in candidates:
        if path is not None and path.is_file():
            return path
    # Nothing found: the checkout location, so the eventual open() names a sensible path.
    return Path(__file__).resolve().parents[3] / "fixtures/github" / name
