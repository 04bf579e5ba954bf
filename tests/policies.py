"""Policies for end-to-end tests: the fixture registry's `.shipyard.yml` with changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FIXTURE_POLICY = Path(__file__).resolve().parents[1] / "fixtures/registry/shipyard.yml"


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def policy_text(**changes: Any) -> str:
    """The demo policy, quick and deterministic to evaluate (no latency), with `changes`."""
    base = yaml.safe_load(FIXTURE_POLICY.read_text())
    quick = {
        # Latency on a loaded CI machine is noise; it has its own tests (test_latency.py).
        "latency": {"enabled": False},
        "calibration": {"max_threshold_shift": 0.2},
        "review": {
            "approvers": ["lead-ml", "acme/ml-reviewers"],
            "required_approvals": 1,
            "merge_method": "squash",
        },
    }
    return yaml.safe_dump(_merge(_merge(base, quick), changes), sort_keys=False)
