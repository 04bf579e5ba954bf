"""The obvious alternative the gateway is measured against: FastAPI + one onnxruntime session,
the same OIP v2 request body, no routing, metrics or logging.

Run: `MODEL=path/to/model.onnx uvicorn bench.minimal_onnx_endpoint:app --port 8001`.
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.responses import Response

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(os.environ["MODEL"], options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
app = FastAPI()


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request) -> Response:
    body = json.loads(await request.body())
    tensor = body["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    (proba,) = session.run(["probabilities"], {input_name: x})
    out = {
        "model_name": name,
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [len(x)], "data": proba[:, 1].tolist()}
        ],
    }
    return Response(json.dumps(out), media_type="application/json")
