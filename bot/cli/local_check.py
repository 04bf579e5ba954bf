"""`shipyard check` and `shipyard init-model`: the candidate check on a laptop, and a valid start.

The check reads a model directory from disk and hands it to the same pure gate the bot runs on
a pull request (`bot.promotion.registration_gate.evaluate_candidate`), so the messages are the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bot.github.lfs import parse_pointer
from bot.promotion.registration_gate import Conclusion, GateResult, evaluate_candidate
from evaluators.candidate import ModelConfig

# The same ceiling the bot applies to a file read from GitHub (its blob API's limit).
MAX_FILE_BYTES = 100 * 1024 * 1024


@dataclass
class LocalModelFiles:
    """A model directory as the gate sees it: file bytes by relative path, and unreadable files."""

    files: dict[str, bytes] = field(default_factory=dict)
    file_errors: dict[str, str] = field(default_factory=dict)


def read_local_model_dir(directory: Path) -> LocalModelFiles:
    """Every file under `directory`; symlinks, huge files and unfetched LFS objects are errors."""
    found = LocalModelFiles()
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_symlink():
            found.files[rel] = b""
            found.file_errors[rel] = "symbolic links are not allowed in a model directory"
            continue
        if not path.is_file():
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            found.file_errors[rel] = "file is larger than 100 MB and not in Git LFS"
            continue
        data = path.read_bytes()
        found.files[rel] = data
        if parse_pointer(data) is not None:
            # The bot fetches LFS objects; locally an unfetched pointer means `git lfs pull`.
            found.file_errors[rel] = "is a Git LFS pointer whose object is not here: git lfs pull"
    return found


def check_model_dir(directory: Path) -> GateResult:
    """The candidate check of one local model directory (its name is the directory's)."""
    directory = directory.resolve()
    if not directory.is_dir():
        return GateResult(
            model=directory.name,
            conclusion=Conclusion.FAILURE,
            title=f"{directory.name}: not a valid candidate (1 problem)",
            problems=[f"{directory} does not exist or is not a directory"],
        )
    found = read_local_model_dir(directory)
    return evaluate_candidate(
        model=directory.name,
        files=found.files,
        lfs_paths=set(),
        file_errors=found.file_errors,
    )


def model_dirs_for(paths: list[Path], *, models_root: str) -> list[Path]:
    """The model directories that paths (directories, or files inside them) belong to.

    A file `models/churn/weights/model.onnx` (pre-commit passes changed files) means
    `models/churn`; a directory holding config.yaml, or named under the root, is itself.
    """
    out: list[Path] = []
    for path in paths:
        chosen = _model_dir_of(path, models_root)
        if chosen is not None and chosen not in out:
            out.append(chosen)
    return out


def _model_dir_of(path: Path, models_root: str) -> Path | None:
    if not path.exists():
        return path  # the check then says it does not exist
    root_parts = tuple(Path(models_root).parts)
    absolute = path.absolute()
    for candidate in [absolute, *absolute.parents]:
        parent_parts = candidate.parent.parts
        if candidate.is_dir() and root_parts and parent_parts[-len(root_parts) :] == root_parts:
            return candidate
    if path.is_dir():
        return path
    return None  # a file outside any model directory (e.g. README.md): nothing to check


def config_json_schema() -> dict[str, object]:
    """The JSON Schema editors use to complete a model's `config.yaml`."""
    return ModelConfig.model_json_schema()


# --- init-model -------------------------------------------------------------------------------

_CONFIG = """\
# Shipyard model config: every field is described in docs/model-directory.md.
name: {name}
task: binary_classification
format: onnx
weights: weights/model.onnx
features:
{features}
input:
  kind: tensor          # one float tensor [rows, features] …
  name: features        # … with this input name
classes: [0, 1]
positive_class: 1
threshold: 0.5
hyperparameters: {{}}   # free-form: what you trained with
training:
  snapshot: snapshot:{name}-train-YYYY-MM   # the data snapshot; also in data_manifest.txt
"""

_CHANGELOG = """\
# {name}

## Unreleased
- First version: replace weights/model.onnx (a constant placeholder) with the trained model,
  and say here what changed and why.
"""

_MANIFEST = """\
# Training data snapshot identifiers, one per line (and, for the leakage check, row ids).
snapshot:{name}-train-YYYY-MM
"""


def _placeholder_onnx(n_features: int) -> bytes:
    """A tiny valid binary classifier (always the prior 0.5) so the directory passes the check."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["z0"]),
            helper.make_node("Add", ["z0", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p"]),
            helper.make_node("Sub", ["one", "p"], ["q"]),
            helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1),
        ],
        "shipyard_placeholder",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, [n_features, 1], [0.0] * n_features),
            helper.make_tensor("b", TensorProto.FLOAT, [1], [0.0]),
            helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def init_model_dir(directory: Path, *, features: list[str]) -> list[Path]:
    """Write a model directory that passes `shipyard check`; refuses to overwrite anything."""
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} already exists and is not empty")
    name = directory.name
    files = {
        "config.yaml": _CONFIG.format(
            name=name, features="\n".join(f"- {f}" for f in features)
        ).encode(),
        "eval_results.json": (
            json.dumps(
                {"metrics": {"roc_auc": 0.5}, "dataset": "your held-out set", "notes": ""},
                indent=2,
            )
            + "\n"
        ).encode(),
        "CHANGELOG.md": _CHANGELOG.format(name=name).encode(),
        "data_manifest.txt": _MANIFEST.format(name=name).encode(),
        "weights/model.onnx": _placeholder_onnx(len(features)),
    }
    written = []
    for rel, data in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written
