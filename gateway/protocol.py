"""Open Inference Protocol v2 request bodies, bounded and turned into one float32 matrix.

Two shapes are accepted: one FP32/FP64 tensor [N, F] (features in config order), or one tensor
per feature column, named like the feature, of shape [N] or [N, 1].
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_INPUTS = 512
NUMERIC = ("FP32", "FP64", "INT32", "INT64", "INT16", "INT8", "UINT8", "BOOL")

# Fixed, short texts: the only errors a caller ever reads.
BAD_REQUEST = "request is not a valid inference request"
BAD_INPUTS = "inputs do not match the model's features"
TOO_MANY_ROWS = "too many rows in one request"


class ProtocolError(ValueError):
    """The body does not describe the model's inputs; str() is a fixed text above."""


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=128)
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: Literal[NUMERIC]  # type: ignore[valid-type]
    data: list[float | None] | list[list[float | None]]


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(default=None, max_length=256)
    inputs: list[RequestInput] = Field(min_length=1, max_length=MAX_INPUTS)


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
