"""The routing table: per model, the production version, the shadow version and its mirror
share, the canary version and its weight.

The bot writes it (through its TrafficRouter port); gateways and the nginx renderer read it.
Pure data and validation here; `save_routing` writes atomically so a reader never sees half a
table, and `load_routing` is what a gateway polls to pick up changes without a restart.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Model names and versions end up in URLs, Prometheus labels, file paths and nginx config.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
_NAME = re.compile(NAME_PATTERN)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deployed(_Strict):
    """One version of a model as the artifact store holds it."""

    version: str = Field(pattern=NAME_PATTERN, description="Registry version, e.g. 1.4.0.")
    sha256: str = Field(pattern=SHA256_PATTERN, description="Digest of the artifact bundle.")


class ShadowSlot(Deployed):
    mirror_share: float = Field(default=1.0, ge=0.0, le=1.0)


class CanarySlot(Deployed):
    weight: float = Field(ge=0.0, le=1.0, description="Share of live answers from the canary.")


class ModelRoute(_Strict):
    production: Deployed
    shadow: ShadowSlot | None = None
    canary: CanarySlot | None = None

    @model_validator(mode="after")
    def _distinct_versions(self) -> ModelRoute:
        for slot in (self.shadow, self.canary):
            if slot is not None and slot.version == self.production.version:
                raise ValueError("a shadow or canary version must differ from production's")
        return self


class Routing(_Strict):
    revision: int = Field(default=0, ge=0, description="Raised by every change.")
    models: dict[str, ModelRoute] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _names(cls, value: dict[str, ModelRoute]) -> dict[str, ModelRoute]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"model name {name!r} must match {NAME_PATTERN}")
        return value


def load_routing(path: Path) -> Routing:
    """The table at `path`; an absent file is an empty table."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Routing()
    return Routing.model_validate_json(text)


def save_routing(path: Path, routing: Routing) -> None:
    """Write atomically (temp file + rename in the same directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".routing-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(routing.model_dump_json(indent=2))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
