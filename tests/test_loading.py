"""Artifacts are classified by content; only safe ONNX and skops files are ever loaded."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import skops.io as sio
from onnx import TensorProto, helper, numpy_helper

from evaluators.artifacts.inference import open_runner, predict_proba
from evaluators.artifacts.loading import (
    TRUSTED_TYPES,
    UnsafeArtifactError,
    UnsupportedFormatError,
    classify_artifact_bytes,
    inspect_artifact,
    load_skops,
    verify_artifact,
)
from evaluators.candidate import ArtifactFormat, ModelConfig
from evaluators.report import RunStatus

REGISTRY = Path(__file__).resolve().parent.parent / "fixtures" / "registry"


class _CreatesMarker:
    """Unpickling this would create a file: the side effect that must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _malicious_pickle(marker: Path, protocol: int) -> bytes:
    return pickle.dumps(_CreatesMarker(marker), protocol=protocol)


def _tiny_onnx(*, external: str | None = None, directory: Path | None = None) -> bytes:
    """y = sigmoid(x @ w) on 2 features, optionally with w stored as external data."""
    weight = numpy_helper.from_array(np.array([[1.0], [-1.0]], np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["z"]), helper.make_node("Sigmoid", ["z"], ["p"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 1])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if external is not None:
        tensor = model.graph.initializer[0]
        if directory is not None:
            (directory / external).write_bytes(tensor.raw_data)
        length = len(tensor.raw_data)
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external), ("offset", "0"), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
    return bytes(model.SerializeToString())


def _config(fmt: ArtifactFormat, weights: str) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "tiny",
            "task": "binary_classification",
            "format": fmt.value,
            "weights": weights,
            "features": ["a", "b"],
            "input": {"kind": "tensor", "name": "x"},
        }
    )


def _model_dir(tmp_path: Path, filename: str, data: bytes) -> Path:
    model_dir = tmp_path / "models" / "tiny"
    (model_dir / "weights").mkdir(parents=True)
    (model_dir / "weights" / filename).write_bytes(data)
    return model_dir


@pytest.mark.parametrize(
    "variant",
    ["production", "candidate_better", "candidate_slower", "candidate_skops"],
)
def test_committed_fixture_artifacts_are_recognised_as_safe(variant: str) -> None:
    weights = next((REGISTRY / variant / "models" / "churn" / "weights").iterdir())
    info = inspect_artifact(weights)
    assert info.safe, info.reason
    assert info.format is (
        ArtifactFormat.SKOPS if weights.suffix == ".skops" else ArtifactFormat.ONNX
    )
    assert info.size == weights.stat().st_size and len(info.sha256) == 64


def _pickled_zip(marker: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", _malicious_pickle(marker, 2))
    return out.getvalue()


def _zip_without_schema() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("config.json", "{}")
    return out.getvalue()


REFUSED = [
    ("a protocol 0 pickle is refused", lambda m: _malicious_pickle(m, 0), "pickle", True),
    ("a protocol 2 pickle is refused", lambda m: _malicious_pickle(m, 2), "pickle", True),
    ("a protocol 5 pickle is refused", lambda m: _malicious_pickle(m, 5), "pickle", True),
    (
        "a zlib joblib file is refused",
        lambda m: zlib.compress(_malicious_pickle(m, 4)),
        "joblib",
        True,
    ),
    (
        "a gzip joblib file is refused",
        lambda m: gzip.compress(_malicious_pickle(m, 4), mtime=0),
        "joblib",
        True,
    ),
    ("a zip holding a pickle is refused", _pickled_zip, "zip", True),
    ("a zip without schema.json is unsupported", lambda m: _zip_without_schema(), "zip", False),
    ("random bytes are unsupported", lambda m: bytes(range(7, 200)), "unknown", False),
    ("an empty file is unsupported", lambda m: b"", "empty", False),
    (
        "a Git LFS pointer is unsupported",
        lambda m: b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 3\n",
        "lfs-pointer",
        False,
    ),
    ("a protobuf that is not ONNX is unsupported", lambda m: b"\x08\x07", "unknown", False),
]


@pytest.mark.parametrize(
    ("make", "detected", "unsafe"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
@pytest.mark.parametrize("filename", ["model.pkl", "model.onnx", "model.skops"])
def test_unsafe_or_unknown_bytes_are_refused_whatever_the_name(
    tmp_path: Path, make: object, detected: str, unsafe: bool, filename: str
) -> None:
    marker = tmp_path / "pwned"
    data = make(marker)  # type: ignore[operator]
    verdict = classify_artifact_bytes(data, filename=filename)
    assert not verdict.safe and verdict.format is None
    assert verdict.detected == detected
    assert verdict.unsafe is unsafe
    assert verdict.reason.startswith(filename)
    assert not marker.exists()


@pytest.mark.parametrize("filename", ["model.pkl", "model.onnx", "model.skops"])
def test_a_malicious_pickle_never_runs_through_loading_or_inference(
    tmp_path: Path, filename: str
) -> None:
    marker = tmp_path / "pwned"
    model_dir = _model_dir(tmp_path, filename, _malicious_pickle(marker, 4))
    fmt = ArtifactFormat.SKOPS if filename.endswith(".skops") else ArtifactFormat.ONNX
    config = _config(fmt, f"weights/{filename}")
    with pytest.raises(UnsafeArtifactError, match="pickle"):
        open_runner(model_dir=model_dir, config=config)
    with pytest.raises(UnsafeArtifactError, match="pickle"):
        load_skops(model_dir / config.weights, root=model_dir)
    frame = pd.DataFrame({"a": [0.1, 0.2], "b": [0.3, 0.4]})
    result = predict_proba(
        model_dir=model_dir, config=config, frame=frame, timeout_s=60, memory_mb=2048
    )
    assert result.status is RunStatus.ERROR
    assert "pickle" in result.message
    assert not marker.exists()


def test_a_valid_onnx_model_loads_and_predicts(tmp_path: Path) -> None:
    model_dir = _model_dir(tmp_path, "model.onnx", _tiny_onnx())
    runner = open_runner(
        model_dir=model_dir, config=_config(ArtifactFormat.ONNX, "weights/model.onnx")
    )
    proba = runner.predict(np.array([[2.0, 0.0], [0.0, 2.0]], np.float32))
    assert proba == pytest.approx([1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))], abs=1e-6)


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("../../etc/passwd", "leaves the model directory"),
        ("/etc/passwd", "absolute path"),
        ("C:\\weights.bin", "absolute path"),
    ],
    ids=[
        "a parent-directory location is refused",
        "an absolute location is refused",
        "a windows drive location is refused",
    ],
)
def test_onnx_external_data_outside_the_model_directory_is_refused(
    tmp_path: Path, location: str, words: str
) -> None:
    data = _tiny_onnx(external=location)
    verdict = classify_artifact_bytes(data, filename="model.onnx")
    assert not verdict.safe and verdict.unsafe and words in verdict.reason
    model_dir = _model_dir(tmp_path, "model.onnx", data)
    with pytest.raises(UnsafeArtifactError, match=words):
        open_runner(model_dir=model_dir, config=_config(ArtifactFormat.ONNX, "weights/model.onnx"))


def test_onnx_external_data_through_a_symlink_is_refused_unread(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(np.array([1.0, -1.0], np.float32).tobytes())
    model_dir = _model_dir(tmp_path, "model.onnx", _tiny_onnx(external="w.bin"))
    os.symlink(outside, model_dir / "weights" / "w.bin")
    info = inspect_artifact(model_dir / "weights" / "model.onnx", root=model_dir)
    assert not info.safe and info.unsafe and "external data" in (info.reason or "")


def test_onnx_external_data_even_inside_the_model_directory_is_refused(tmp_path: Path) -> None:
    model_dir = tmp_path / "models" / "tiny"
    (model_dir / "weights").mkdir(parents=True)
    data = _tiny_onnx(external="w.bin", directory=model_dir / "weights")
    (model_dir / "weights" / "model.onnx").write_bytes(data)
    with pytest.raises(UnsafeArtifactError, match="only self-contained ONNX"):
        open_runner(model_dir=model_dir, config=_config(ArtifactFormat.ONNX, "weights/model.onnx"))


def test_an_artifact_symlinked_from_outside_the_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.onnx").write_bytes(_tiny_onnx())
    model_dir = tmp_path / "models" / "tiny"
    (model_dir / "weights").mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere.onnx", model_dir / "weights" / "model.onnx")
    info = inspect_artifact(model_dir / "weights" / "model.onnx", root=model_dir)
    assert not info.safe and "outside the model" in (info.reason or "")


class CustomEstimator:
    """A type no trusted list contains."""

    def __init__(self) -> None:
        self.coef = [1.0, 2.0]


def test_skops_with_an_untrusted_type_is_refused_naming_the_type(tmp_path: Path) -> None:
    data = sio.dumps(CustomEstimator())
    verdict = classify_artifact_bytes(data, filename="model.skops")
    assert not verdict.safe and verdict.unsafe
    assert "CustomEstimator" in verdict.reason and "does not trust" in verdict.reason
    model_dir = _model_dir(tmp_path, "model.skops", data)
    with pytest.raises(UnsafeArtifactError, match="CustomEstimator"):
        load_skops(model_dir / "weights" / "model.skops", root=model_dir)


def test_the_trusted_skops_types_are_fixed_in_code() -> None:
    assert TRUSTED_TYPES == (
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
    )


def test_a_format_other_than_the_declared_one_is_refused(tmp_path: Path) -> None:
    model_dir = _model_dir(tmp_path, "model.skops", _tiny_onnx())
    with pytest.raises(UnsupportedFormatError, match="declares format skops"):
        verify_artifact(
            model_dir / "weights" / "model.skops", expected=ArtifactFormat.SKOPS, root=model_dir
        )


def test_a_structurally_invalid_onnx_graph_fails_the_checker() -> None:
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"])],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    verdict = classify_artifact_bytes(data, filename="model.onnx")
    assert not verdict.safe and not verdict.unsafe and "onnx.checker" in verdict.reason
    assert onnx.load_model_from_string(data).graph.node[0].op_type == "NoSuchOp"
