"""Open Inference Protocol v2 request bodies, bounded and turned into one float32 matrix.

Two shapes are accepted: one FP32/FP64 tensor [N, F] (features in config order), or one tensor
per feature column, named like the feature, of shape [N] or [N, 1].

The request's `parameters` may carry `shipyard_context` (CONTEXT_PARAMETER): columns that are
logged with the request's rows but never fed to the model (segment columns such as region, for
shadow's per-segment minimums). One object applies to every row; a list of N objects gives each
of the N rows its own. Untrusted, so bounded: see `ContextColumns`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)

MAX_INPUTS = 512
NUMERIC = ("FP32", "FP64", "INT32", "INT64", "INT16", "INT8", "UINT8", "BOOL")

# Fixed, short texts: the only errors a caller ever reads.
BAD_REQUEST = "request is not a valid inference request"
BAD_INPUTS = "inputs do not match the model's features"
TOO_MANY_ROWS = "too many rows in one request"

CONTEXT_PARAMETER = "shipyard_context"  # the reserved key of the request's `parameters`
MAX_CONTEXT_KEYS = 32
MAX_CONTEXT_KEY = 128
MAX_CONTEXT_TEXT = 200


class ProtocolError(ValueError):
    """The body does not describe the model's inputs; str() is a fixed text above."""


def _utf8(text: str) -> str:
    # A lone surrogate (`"\\ud800"`) parses but cannot be written as UTF-8 to the log.
    text.encode("utf-8")
    return text


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


ContextKey = Annotated[str, Field(min_length=1, max_length=MAX_CONTEXT_KEY), AfterValidator(_utf8)]
ContextValue = (
    Annotated[str, Field(max_length=MAX_CONTEXT_TEXT), AfterValidator(_utf8)]
    | StrictBool
    | Annotated[StrictInt, Field(ge=-(2**63), le=2**63)]
    | Annotated[StrictFloat, AfterValidator(_finite)]
    | None
)
# What a valid context holds, as plain types: one object for every row, or one per row.
Scalar = str | bool | int | float | None
Context = dict[str, Scalar] | list[dict[str, Scalar]]
# A row's context: column -> string, finite number, boolean or null.
ContextColumns = Annotated[dict[ContextKey, ContextValue], Field(max_length=MAX_CONTEXT_KEYS)]


class RequestParameters(BaseModel):
    """The OIP request `parameters`; other keys are the caller's business and ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=False)
    context: ContextColumns | list[ContextColumns] | None = Field(
        default=None,
        alias="shipyard_context",  # CONTEXT_PARAMETER (mypy wants a literal)
    )


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=128)
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: Literal[NUMERIC]  # type: ignore[valid-type]
    data: list[float | None] | list[list[float | None]]


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(default=None, max_length=256)
    parameters: RequestParameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=MAX_INPUTS)

    def context(self, rows: int) -> Context | None:
        """The context columns for `rows` rows (None without any); a per-row list must have one
        object per row."""
        found = self.parameters.context if self.parameters is not None else None
        if isinstance(found, list):
            if len(found) != rows:
                raise ProtocolError(BAD_REQUEST)
            return list(found) if any(found) else None
        return dict(found) if found else None


def parse_request(body: bytes) -> InferRequest:
    try:
        return InferRequest.model_validate_json(body)
    except ValidationError:
        raise ProtocolError(BAD_REQUEST) from None


def _values(item: RequestInput) -> NDArray[np.float32]:
    flat = np.asarray(item.data, dtype=np.float32)  # None becomes NaN
    expected = math.prod(item.shape) if all(d >= 0 for d in item.shape) else -1
    if flat.size != expected:
        raise ProtocolError(BAD_INPUTS)
    return flat.reshape(-1)


def feature_matrix(
    request: InferRequest, *, features: list[str], tensor_names: set[str], max_rows: int
) -> NDArray[np.float32]:
    """The request's rows as [N, F] float32 in the model's feature order."""
    n_features = len(features)
    if len(request.inputs) == 1 and request.inputs[0].name not in features:
        item = request.inputs[0]
        if item.name not in tensor_names or len(item.shape) != 2 or item.shape[1] != n_features:
            raise ProtocolError(BAD_INPUTS)
        if item.shape[0] > max_rows:
            raise ProtocolError(TOO_MANY_ROWS)
        return np.ascontiguousarray(_values(item).reshape(item.shape[0], n_features))
    by_name = {item.name: item for item in request.inputs}
    if len(by_name) != len(request.inputs) or set(by_name) != set(features):
        raise ProtocolError(BAD_INPUTS)
    rows = by_name[features[0]].shape[0]
    if rows > max_rows:
        raise ProtocolError(TOO_MANY_ROWS)
    columns = []
    for name in features:
        item = by_name[name]
        if item.shape[0] != rows or (len(item.shape) == 2 and item.shape[1] != 1):
            raise ProtocolError(BAD_INPUTS)
        columns.append(_values(item))
    return np.ascontiguousarray(np.stack(columns, axis=1))
