"""The files a candidate directory must hold, and the models that validate them.

`models/<name>/` = weights/, config.yaml, eval_results.json, CHANGELOG.md, data_manifest.txt.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evaluators.errors import (
    DocumentError,
    format_validation_error,
    load_json_with_lines,
    load_yaml_with_lines,
)

REQUIRED_FILES = ("config.yaml", "eval_results.json", "CHANGELOG.md", "data_manifest.txt")
WEIGHTS_DIR = "weights"


class Task(StrEnum):
    BINARY = "binary_classification"
    MULTICLASS = "multiclass_classification"
    REGRESSION = "regression"


class ArtifactFormat(StrEnum):
    ONNX = "onnx"
    SKOPS = "skops"


class InputKind(StrEnum):
    TENSOR = "tensor"  # one float tensor [n, n_features]
    COLUMNS = "columns"  # one [n, 1] input per feature, named like the feature


class ModelInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: InputKind = InputKind.TENSOR
    name: str | None = Field(default=None, description="Tensor input name (kind: tensor).")


class ModelConfig(BaseModel):
    """`config.yaml`: what the model is and how to feed it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    task: Task
    format: ArtifactFormat
    weights: str = Field(description="Artifact path relative to the model directory.")
    features: list[str] = Field(min_length=1)
    input: ModelInput = ModelInput()
    classes: list[str | int] | None = None
    positive_class: str | int | None = None
    threshold: float = Field(default=0.5, ge=0, le=1)
    hyperparameters: dict[str, object] = Field(default_factory=dict)
    training: dict[str, object] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _weights_inside_weights_dir(self) -> ModelConfig:
        parts = self.weights.split("/")
        if parts[0] != WEIGHTS_DIR or ".." in parts or len(parts) < 2:
            raise ValueError("weights must be a path under weights/, e.g. weights/model.onnx")
        return self


class ClaimedResults(BaseModel):
    """`eval_results.json`: the author's own numbers. Shown, never trusted."""

    model_config = ConfigDict(extra="allow")

    metrics: dict[str, float] = Field(min_length=1)
    dataset: str | None = None
    notes: str | None = None


def parse_model_config(text: str, *, source: str = "config.yaml") -> ModelConfig:
    """Validate config.yaml; errors name the line."""
    data, lines = load_yaml_with_lines(text, source=source)
    if not isinstance(data, dict):
        raise DocumentError(f"{source}: line 1: the top level must be a mapping")
    try:
        return ModelConfig.model_validate(data)
    except Exception as exc:
        raise DocumentError(format_validation_error(exc, source, lines)) from None


def parse_claimed_results(text: str, *, source: str = "eval_results.json") -> ClaimedResults:
    """Validate eval_results.json; errors name the line."""
    data, lines = load_json_with_lines(text, source=source)
    if not isinstance(data, dict):
        raise DocumentError(f"{source}: line 1: the top level must be an object")
    try:
        return ClaimedResults.model_validate(data)
    except Exception as exc:
        raise DocumentError(format_validation_error(exc, source, lines)) from None


def parse_data_manifest(text: str) -> list[str]:
    """Snapshot or row identifiers, one per line; `#` starts a comment."""
    out = []
    for line in text.splitlines():
        item = line.split("#", 1)[0].strip()
        if item:
            out.append(item)
    return out
