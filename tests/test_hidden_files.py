"""Unsafe content is found wherever it hides: any file of a model directory, any ONNX tensor."""

from __future__ import annotations

import bz2
import gzip
import io
import pickle
import zipfile
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from onnx import ModelProto, TensorProto, helper, numpy_helper

from bot.promotion.registration_gate import Conclusion, evaluate_candidate
from evaluators.artifacts.loading import (
    classify_artifact_bytes,
    external_data_locations,
    hidden_code,
)


def _external(tensor: TensorProto, location: str = "w.bin") -> TensorProto:
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _w(name: str = "w") -> TensorProto:
    return numpy_helper.from_array(np.array([[1.0], [-1.0]], np.float32), name)


def _graph(nodes: list, initializers: list | None = None, sparse: list | None = None):  # type: ignore[no-untyped-def]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 1])],
        initializers or [],
    )
    graph.sparse_initializer.extend(sparse or [])
    return graph


def _model(graph, functions: list | None = None) -> ModelProto:  # type: ignore[no-untyped-def]
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=functions or [],
    )
    return model


def _matmul() -> list:  # type: ignore[type-arg]
    return [helper.make_node("MatMul", ["x", "w"], ["p"])]


def _sparse(external_part: str) -> object:
    values = numpy_helper.from_array(np.array([1.0], np.float32), "sv")
    indices = numpy_helper.from_array(np.array([0], np.int64), "si")
    _external(values if external_part == "values" else indices)
    return helper.make_sparse_tensor(values, indices, [2, 1])


def in_initializer() -> ModelProto:
    return _model(_graph(_matmul(), [_external(_w())]))


def in_sparse_initializer_values() -> ModelProto:
    sparse = _sparse("values")
    sparse.values.name = "w"  # type: ignore[attr-defined]
    return _model(_graph(_matmul(), sparse=[sparse]))


def in_sparse_initializer_indices() -> ModelProto:
    sparse = _sparse("indices")
    sparse.values.name = "w"  # type: ignore[attr-defined]
    return _model(_graph(_matmul(), sparse=[sparse]))


def in_constant_value() -> ModelProto:
    const = helper.make_node("Constant", [], ["w"], value=_external(_w("c")))
    return _model(_graph([const, *_matmul()]))


def in_constant_sparse_value() -> ModelProto:
    const = helper.make_node("Constant", [], ["w"], sparse_value=_sparse("values"))
    return _model(_graph([const, *_matmul()]))


def in_a_tensors_attribute() -> ModelProto:
    node = helper.make_node("MatMul", ["x", "w"], ["p"])
    node.attribute.append(helper.make_attribute("extra", [_external(_w("t"))]))
    return _model(_graph([node], [_w()]))


def in_an_if_branch() -> ModelProto:
    branch = helper.make_graph(
        [helper.make_node("Identity", ["b"], ["out"])],
        "branch",
        [],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 1])],
        [_external(_w("b"))],
    )
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("If", ["cond"], ["w"], then_branch=branch, else_branch=branch)
    return _model(_graph([node, *_matmul()], [cond]))


def in_a_loop_body_nested_twice() -> ModelProto:
    inner = helper.make_graph([], "inner", [], [], [_external(_w("deep"))])
    outer = helper.make_graph(
        [helper.make_node("If", ["c"], [], then_branch=inner, else_branch=inner)], "outer", [], []
    )
    node = helper.make_node("Loop", ["", ""], [], body=outer)
    return _model(_graph([node, *_matmul()], [_w()]))


def in_a_function_body() -> ModelProto:
    const = helper.make_node("Constant", [], ["k"], value=_external(_w("f")))
    function = helper.make_function(
        "local", "F", ["a"], ["k"], [const], [helper.make_opsetid("", 17)]
    )
    return _model(_graph(_matmul(), [_w()]), functions=[function])


def in_a_training_graph() -> ModelProto:
    model = _model(_graph(_matmul(), [_w()]))
    info = model.training_info.add()
    info.initialization.CopyFrom(helper.make_graph([], "init", [], [], [_external(_w("tr"))]))
    return model


PLACES: list[Callable[[], ModelProto]] = [
    in_initializer,
    in_sparse_initializer_values,
    in_sparse_initializer_indices,
    in_constant_value,
    in_constant_sparse_value,
    in_a_tensors_attribute,
    in_an_if_branch,
    in_a_loop_body_nested_twice,
    in_a_function_body,
    in_a_training_graph,
]


@pytest.mark.parametrize(
    "make", PLACES, ids=[f"external data {f.__name__.replace('_', ' ')} is found" for f in PLACES]
)
def test_external_data_is_found_wherever_the_tensor_is(make: Callable[[], ModelProto]) -> None:
    model = make()
    assert set(external_data_locations(model)) == {"w.bin"}
    verdict = classify_artifact_bytes(model.SerializeToString(), filename="model.onnx")
    assert not verdict.safe and verdict.unsafe
    assert "external data" in verdict.reason


def test_a_self_contained_model_has_no_external_data() -> None:
    model = _model(_graph(_matmul(), [_w()]))
    assert external_data_locations(model) == []
    assert classify_artifact_bytes(model.SerializeToString(), filename="model.onnx").safe


class _Exploit:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("pwned",))


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:  # type: ignore[type-arg]
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


PICKLE = pickle.dumps(_Exploit(), protocol=4)
HIDDEN = [
    ("preprocessing/scaler.pkl", PICKLE, "pickle"),
    ("preprocessing/scaler.json", PICKLE, "pickle"),
    ("notes.txt", pickle.dumps(_Exploit(), protocol=0), "text protocol"),
    ("vocab.bin", pickle.dumps(_Exploit(), protocol=1), "pickle"),
    ("scaler.gz", gzip.compress(PICKLE), "gzip-compressed pickle"),
    ("scaler.bz2", bz2.compress(PICKLE), "bz2-compressed pickle"),
    ("scaler.joblib", b"ZF" + zlib.compress(PICKLE), "joblib"),
    ("encoder.pt", _zip({"archive/data.pkl": PICKLE}), "pickled data"),
    ("bundle.zip", _zip({"readme.md": b"hi", "inner.bin": PICKLE}), "holding a pickle"),
    ("ids.npy", _npy(np.array([{"a": 1}], dtype=object)), "Python objects"),
]


@pytest.mark.parametrize(
    ("path", "data", "words"),
    HIDDEN,
    ids=[f"{path} holding {words} is found" for path, _, words in HIDDEN],
)
def test_code_hidden_in_any_file_is_found_by_its_bytes(path: str, data: bytes, words: str) -> None:
    reason = hidden_code(data, filename=path)
    assert reason is not None and words in reason and path in reason


HARMLESS = [
    ("CHANGELOG.md", b"# 1.2\n\n- retrained on the October snapshot\n"),
    ("notes.md", b"cat\ndog\nthis is prose, not a pickle\n"),
    ("dot.txt", b".\n"),
    ("features.csv.gz", gzip.compress(b"0.1,0.2\n0.3,0.4\n")),
    ("config.yaml", b"name: churn\ntask: binary_classification\n"),
    ("eval_results.json", b'{"metrics": {"roc_auc": 0.86}}'),
    ("means.npy", _npy(np.array([0.5, 1.5]))),
    ("docs.zip", _zip({"a.txt": b"hello", "b.csv": b"x,y\n1,2\n"})),
    ("random.bin", bytes(range(256)) * 4),
]


@pytest.mark.parametrize(
    ("path", "data"), HARMLESS, ids=[f"{path} is not mistaken for code" for path, _ in HARMLESS]
)
def test_ordinary_files_are_not_mistaken_for_code(path: str, data: bytes) -> None:
    assert hidden_code(data, filename=path) is None


def _candidate(extra: dict[str, bytes]) -> dict[str, bytes]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "fixtures/registry/candidate_better/models/churn"
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return {**files, **extra}


def test_the_registration_gate_fails_a_pickle_outside_weights() -> None:
    result = evaluate_candidate(
        model="churn",
        files=_candidate({"preprocessing/scaler.pkl": PICKLE}),
        lfs_paths=set(),
        file_errors={},
    )
    assert result.conclusion is Conclusion.FAILURE
    assert "`preprocessing/scaler.pkl`" in result.summary() and "pickle" in result.summary()


def test_a_text_protocol_pickle_longer_than_the_probe_is_still_found() -> None:
    big = pickle.dumps([_Exploit(), list(range(300_000))], protocol=0)
    assert len(big) > 1024 * 1024
    assert "text protocol" in (hidden_code(big, filename="big.txt") or "")


def test_a_long_text_that_starts_like_a_pickle_is_not_one() -> None:
    text = b"cats and dogs\nlive here\n" + b"# notes\n" * 200_000
    assert hidden_code(text, filename="notes.md") is None
