"""The branches Shipyard itself creates: named here so the code that opens them and the gate
that recognises them agree."""

from __future__ import annotations

import hashlib
import re

REVERT_PREFIX = "shipyard/revert-pr"
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def revert_branch(pr_number: int, model: str) -> str:
    """`shipyard/revert-pr<N>-<model>`; a model name git or a URL would mangle gets a digest."""
    slug = _SLUG_UNSAFE.sub("-", model).strip("-")[:60] or "model"
    if slug != model:
        slug += "-" + hashlib.sha256(model.encode()).hexdigest()[:8]
    return f"{REVERT_PREFIX}{pr_number}-{slug}"
