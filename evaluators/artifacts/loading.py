"""Detect a model artifact's format from its bytes and load only safe formats (ONNX, skops).

Pickle, joblib and anything unknown are refused by content, before any deserialisation:
the file name and the config's declared format are never trusted.
"""

from __future__ import annotations

import bz2
import hashlib
import importlib
import io
import json
import lzma
import pickletools
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, Protocol

from evaluators.artifacts.verdict_cache import CachedPass, VerdictCache
from evaluators.artifacts.worker_process import plain_reason
from evaluators.candidate import ArtifactFormat

if TYPE_CHECKING:
    import onnx
    import onnxruntime
    from google.protobuf.message import Message

# Types a skops file may contain beyond skops' own defaults. Fixed here, never taken from a PR.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)

# What opening a model of either format imports, verification and trusted types included.
LOADER_MODULES: tuple[str, ...] = (
    "onnx",
    "onnxruntime",
    "skops.io",
    *dict.fromkeys(name.rpartition(".")[0] for name in TRUSTED_TYPES),
)

_MAX_SCHEMA_BYTES = 64 * 1024 * 1024
_PICKLE_PROBE_BYTES = 64 * 1024
_COMPRESSED_PROBE_BYTES = 64


class ArtifactError(ValueError):
    """The artifact cannot be loaded; the message says why."""


class UnsafeArtifactError(ArtifactError):
    """The artifact would execute code when loaded (pickle, joblib, untrusted skops types)."""


class UnsupportedFormatError(ArtifactError):
    """The artifact is not a format Shipyard loads, or is malformed."""


@dataclass(frozen=True)
class ArtifactVerdict:
    """What the bytes are, and whether Shipyard may load them."""

    safe: bool
    format: ArtifactFormat | None
    detected: str  # e.g. "onnx", "skops", "pickle", "joblib", "zip", "unknown"
    reason: str
    unsafe: bool = False  # True when refused because loading would execute code


class Classifier(Protocol):
    """What decides an artifact's verdict from its bytes: `classify_artifact_bytes`, or the
    bot's audit process (`audit_process.ArtifactAuditor.classify`)."""

    def __call__(self, data: bytes, *, filename: str) -> ArtifactVerdict: ...


@dataclass(frozen=True)
class ArtifactInfo:
    """An artifact file on disk: its format, identity and verdict."""

    path: Path
    format: ArtifactFormat | None
    detected: str
    sha256: str
    size: int
    reason: str | None  # None when safe to load
    unsafe: bool = False

    @property
    def safe(self) -> bool:
        return self.reason is None


def _refuse(detected: str, reason: str) -> ArtifactVerdict:
    return ArtifactVerdict(False, None, detected, reason, unsafe=True)


def _unsupported(detected: str, reason: str) -> ArtifactVerdict:
    return ArtifactVerdict(False, None, detected, reason, unsafe=False)


def _looks_like_pickle(data: bytes) -> bool:
    """Pickle by its protocol header, or a protocol 0/1 opcode stream (parsed, never run)."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    ops = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # string opcodes may hold odd escapes in random data
        try:
            for opcode, _arg, _pos in pickletools.genops(io.BytesIO(data[:_PICKLE_PROBE_BYTES])):
                ops += 1
                if opcode.name in {"STOP", "GLOBAL", "STACK_GLOBAL", "REDUCE"}:
                    return True
        except Exception:  # not a valid opcode stream, or the probe ended mid-stream
            return ops >= 8
    return False


def _decompress_probe(data: bytes) -> tuple[str, bytes] | None:
    """The compressor and the first bytes of its output, bounded (no decompression bombs)."""
    probes: list[tuple[str, bool, Any]] = [
        ("zlib", data[:1] == b"\x78", lambda: zlib.decompressobj()),
        ("gzip", data[:2] == b"\x1f\x8b", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)),
        ("bz2", data[:3] == b"BZh", lambda: bz2.BZ2Decompressor()),
        ("xz", data[:6] == b"\xfd7zXZ\x00", lambda: lzma.LZMADecompressor()),
        ("lzma", data[:3] == b"\x5d\x00\x00", lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE)),
    ]
    for name, matches, make in probes:
        if not matches:
            continue
        try:
            out = make().decompress(data[:4096], _COMPRESSED_PROBE_BYTES)
        except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError):
            continue  # the magic matched by chance: not this compressor
        return name, bytes(out)
    return None


def _iter_tensors(root: Message) -> Iterator[onnx.TensorProto]:
    """Every TensorProto anywhere in a message: initializers, sparse tensors, node attributes
    (Constant and any other op), subgraphs, function bodies and defaults, training graphs.

    A generic walk over the protobuf's fields, so no place a tensor may hide is forgotten.
    """
    import onnx

    stack: list[Message] = [root]
    while stack:
        message = stack.pop()
        if isinstance(message, onnx.TensorProto):
            yield message
            continue  # a tensor holds no tensors
        for descriptor, value in message.ListFields():
            if descriptor.type != descriptor.TYPE_MESSAGE:
                continue
            if _is_repeated(descriptor):
                stack.extend(value)
            else:
                stack.append(value)


def _is_repeated(descriptor: Any) -> bool:
    # protobuf >= 5 has `is_repeated`; older releases only the label.
    if hasattr(descriptor, "is_repeated"):
        return bool(descriptor.is_repeated)
    return bool(descriptor.label == descriptor.LABEL_REPEATED)


def external_data_locations(model: onnx.ModelProto) -> list[str]:
    """The `location` of every tensor stored outside the .onnx file, wherever the tensor is."""
    import onnx

    out = []
    for tensor in _iter_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            entries = {e.key: e.value for e in tensor.external_data}
            out.append(entries.get("location", ""))
    return out


def _location_problem(location: str) -> str | None:
    """Why an external-data location is not a plain relative path inside the model directory."""
    if not location:
        return "an external tensor has no location"
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or location.startswith("\\"):
        return f"external data location {location!r} is an absolute path"
    if ".." in posix.parts or ".." in windows.parts:
        return f"external data location {location!r} leaves the model directory"
    return None


def _classify_onnx(data: bytes) -> ArtifactVerdict:
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        return _unsupported("unknown", f"not a valid ONNX protobuf ({type(exc).__name__})")
    if model.ir_version <= 0 or not model.opset_import or not model.graph.node:
        return _unsupported("unknown", "protobuf without an ONNX graph, ir_version or opset")
    locations = external_data_locations(model)
    for location in locations:
        problem = _location_problem(location)
        if problem:
            return _refuse("onnx", f"ONNX {problem}")
    if locations:
        # Loading external data opens files by a name the PR chose: refused outright.
        return _refuse(
            "onnx",
            f"ONNX model stores {len(locations):,} tensor(s) outside the .onnx file "
            f"(external data {locations[0]!r}); only self-contained ONNX files are loaded",
        )
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        return _unsupported("onnx", f"ONNX model fails onnx.checker: {_first_line(exc)}")
    return ArtifactVerdict(True, ArtifactFormat.ONNX, "onnx", "valid ONNX model")


def untrusted_skops_types(data: bytes) -> list[str]:
    """Types in a skops file that are neither skops defaults nor in TRUSTED_TYPES."""
    import skops.io as sio

    needed = sio.get_untrusted_types(data=data)
    return sorted(t for t in needed if t not in TRUSTED_TYPES)


def _classify_zip(data: bytes) -> ArtifactVerdict:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except zipfile.BadZipFile:
        return _unsupported("zip", "a damaged zip archive")
    pickled = [n for n in names if n.endswith((".pkl", ".pickle", ".joblib")) or "data.pkl" in n]
    if pickled:
        return _refuse("zip", f"zip archive holds pickled data ({pickled[0]}), e.g. a PyTorch file")
    if "schema.json" not in names:
        return _unsupported("zip", "zip archive without schema.json: not a skops file")
    info = archive.getinfo("schema.json")
    if info.file_size > _MAX_SCHEMA_BYTES:
        return _unsupported("skops", "skops schema.json is implausibly large")
    try:
        schema = json.loads(archive.read("schema.json"))
    except (ValueError, zipfile.BadZipFile):
        return _unsupported("skops", "skops schema.json is not valid JSON")
    if not isinstance(schema, dict) or "protocol" not in schema:
        return _unsupported("zip", "schema.json has no skops protocol: not a skops file")
    try:
        untrusted = untrusted_skops_types(data)
    except Exception as exc:
        return _unsupported("skops", f"skops file cannot be inspected ({type(exc).__name__})")
    if untrusted:
        return _refuse(
            "skops",
            "skops file needs types Shipyard does not trust: "
            + ", ".join(untrusted)
            + f" (trusted: skops defaults and {', '.join(TRUSTED_TYPES)})",
        )
    return ArtifactVerdict(True, ArtifactFormat.SKOPS, "skops", "skops file with trusted types")


def _first_line(exc: Exception) -> str:
    """A library's complaint as a reviewer may read it (first line, no paths, bounded)."""
    return plain_reason(str(exc)) or type(exc).__name__


_CODE_OPCODES = frozenset(
    {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
)
_FULL_PARSE_BYTES = 1024 * 1024  # a valid opcode stream this long is a pickle anyway
_ZIP_MEMBERS_PROBED = 1_000


def _is_complete_pickle(data: bytes) -> bool:
    """A protocol 0/1 pickle: parses (never runs) to STOP and imports or calls something.

    Stricter than `_looks_like_pickle`, which may call any opcode-like bytes a pickle: text
    files (a CHANGELOG) must not be refused because their first letters happen to be opcodes.
    """
    code = False
    probe = data[:_FULL_PARSE_BYTES]
    last = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for opcode, _arg, position in pickletools.genops(io.BytesIO(probe)):
                code |= opcode.name in _CODE_OPCODES
                last = position or 0
                if opcode.name == "STOP":
                    return code
        except Exception:
            # A megabyte of valid opcodes cut off by the probe's end, not by an invalid byte.
            return code and len(data) > len(probe) and last > len(probe) - 4096
    return False


def _pickle_kind(data: bytes) -> str | None:
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "a Python pickle"
    if data[:2] == b"ZF":
        return "a joblib (zlib) pickle"
    if _is_complete_pickle(data):
        return "a Python pickle (text protocol)"
    compressed = _decompress_probe(data)
    if compressed is not None:
        head = compressed[1]
        if (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or _is_complete_pickle(head):
            return f"a {compressed[0]}-compressed pickle (joblib)"
    return None


def hidden_code(data: bytes, *, filename: str) -> str | None:
    """Why a file anywhere in a model directory would run code if someone loaded it, or None.

    Pickles by content whatever their name (also compressed, or inside a zip such as a PyTorch
    file) and NumPy arrays of Python objects. Read as bytes, never deserialised.
    """
    kind = _pickle_kind(data)
    if kind is None and data[:6] == b"\x93NUMPY":
        header = data[:4096]
        if b"'descr': '|O'" in header or b"'descr': 'O'" in header:
            kind = "a NumPy array of Python objects (stored as pickles)"
    if kind is None and data[:4] == b"PK\x03\x04":
        kind = _zip_hidden_code(data)
    if kind is None:
        return None
    return f"{filename} is {kind}, which runs code when loaded; it was not opened"


def _zip_hidden_code(data: bytes) -> str | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()[:_ZIP_MEMBERS_PROBED]
        for info in members:
            name = info.filename
            if name.endswith((".pkl", ".pickle", ".joblib")) or "data.pkl" in name:
                return f"a zip archive holding pickled data ({info.filename})"
            if info.is_dir() or info.file_size == 0:
                continue
            with archive.open(info) as member:
                head = member.read(64)  # bounded: a zip bomb never inflates past this
            if _pickle_kind(head) is not None:
                return f"a zip archive holding a pickle ({info.filename})"
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        return None  # not a readable zip: nothing in it can be loaded either
    return None


def classify_artifact_bytes(data: bytes, *, filename: str) -> ArtifactVerdict:
    """Decide from content alone what an artifact is and whether it may be loaded.

    `filename` only improves messages; a pickle renamed to .onnx is still a pickle.
    """
    if not data:
        return _unsupported("empty", f"{filename} is empty")
    if data.startswith(b"version https://git-lfs"):
        return _unsupported("lfs-pointer", f"{filename} is a Git LFS pointer, not the artifact")
    # Zip and ONNX magic are checked first: they are not pickle opcodes worth probing.
    if not data.startswith((b"PK\x03\x04", b"\x08")) and _looks_like_pickle(data):
        return _refuse("pickle", f"{filename} is a Python pickle, which runs code when loaded")
    if data[:2] == b"ZF":
        return _refuse(
            "joblib", f"{filename} is a joblib (zlib) pickle, which runs code when loaded"
        )
    compressed = _decompress_probe(data)
    if compressed is not None:
        name, head = compressed
        if _looks_like_pickle(head):
            return _refuse(
                "joblib", f"{filename} is a {name}-compressed pickle (joblib), which runs code"
            )
        return _unsupported(name, f"{filename} is {name}-compressed data, not ONNX or skops")
    if data[:4] == b"PK\x03\x04":
        verdict = _classify_zip(data)
    elif data[:1] == b"\x08":  # ModelProto field 1 (ir_version, varint) comes first
        verdict = _classify_onnx(data)
    elif data[:6] == b"\x93NUMPY":
        verdict = _unsupported("npy", "a NumPy array file, not a model")
    elif data[:8] == b"\x89HDF\r\n\x1a\n":
        verdict = _unsupported("hdf5", "an HDF5 file (e.g. Keras); export the model to ONNX")
    else:
        verdict = _unsupported("unknown", "not ONNX, skops or any format Shipyard loads")
    if verdict.safe:
        return verdict
    return ArtifactVerdict(
        False, None, verdict.detected, f"{filename}: {verdict.reason}", unsafe=verdict.unsafe
    )


def _escapes(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return True
    return False


def inspect_artifact(
    path: Path,
    *,
    root: Path | None = None,
    cache: VerdictCache | None = None,
    classify: Classifier | None = None,
) -> ArtifactInfo:
    """Read an artifact file and classify it; `root` bounds symlinks and external data.

    With a `cache`, bytes that passed before (same sha256, verifier and library versions) are
    not verified again, and a pass is recorded; a refusal is never cached. `classify` replaces
    `classify_artifact_bytes` (the bot passes its audit process's).
    """
    root = root if root is not None else path.parent
    name = path.name
    if _escapes(path, root):
        return ArtifactInfo(path, None, "symlink", "", 0, f"{name} points outside the model")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if cache is not None:
        hit = cache.get(sha)
        if hit is not None:
            return ArtifactInfo(
                path, ArtifactFormat(hit.format), hit.detected, sha, len(data), None
            )
    info = _classify_file(path, data, sha, classify or classify_artifact_bytes)
    if cache is not None and info.reason is None and info.format is not None:
        cache.put(sha, CachedPass(info.format.value, info.detected))
    return info


def _classify_file(path: Path, data: bytes, sha: str, classify: Classifier) -> ArtifactInfo:
    # The bytes are all that is judged: the loaders are handed these exact bytes (their sha256
    # is checked again when a session or skops opens them), never the path.
    verdict = classify(data, filename=path.name)
    reason = None if verdict.safe else verdict.reason
    return ArtifactInfo(
        path, verdict.format, verdict.detected, sha, len(data), reason, verdict.unsafe
    )


def verify_artifact(
    path: Path,
    *,
    expected: ArtifactFormat,
    root: Path,
    cache: VerdictCache | None = None,
    classify: Classifier | None = None,
) -> ArtifactInfo:
    """Inspect and raise unless the artifact is safe and of the declared format."""
    info = inspect_artifact(path, root=root, cache=cache, classify=classify)
    if info.reason is not None:
        error = UnsafeArtifactError if info.unsafe else UnsupportedFormatError
        raise error(info.reason)
    if info.format is not expected:
        raise UnsupportedFormatError(
            f"{path.name}: config.yaml declares format {expected.value}, but the file is "
            f"{info.detected}"
        )
    return info


def open_onnx_session(
    path: Path, *, root: Path, intra_op_threads: int = 1, cache: VerdictCache | None = None
) -> onnxruntime.InferenceSession:
    """An onnxruntime session on a verified ONNX file (CPU, no custom ops)."""
    import onnxruntime as ort

    info = verify_artifact(path, expected=ArtifactFormat.ONNX, root=root, cache=cache)
    # The session gets the very bytes that were hashed (and verified, or found in the cache).
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != info.sha256:
        raise UnsupportedFormatError(f"{path.name} changed while it was being loaded")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.load_model_format", "ONNX")
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def import_loaders() -> None:
    """Import now what opening any model may need. A serving process does this before it
    serves: imported at the first model of a format instead, skops and scikit-learn hold the
    GIL for a second or more while the answers of the models already served wait."""
    for name in LOADER_MODULES:
        importlib.import_module(name)


def load_skops(path: Path, *, root: Path, cache: VerdictCache | None = None) -> Any:
    """A skops model whose types are all trusted (skops defaults + TRUSTED_TYPES)."""
    import skops.io as sio

    info = verify_artifact(path, expected=ArtifactFormat.SKOPS, root=root, cache=cache)
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != info.sha256:
        raise UnsupportedFormatError(f"{path.name} changed while it was being loaded")
    return sio.load(io.BytesIO(data), trusted=list(TRUSTED_TYPES))


__all__ = [
    "LOADER_MODULES",
    "TRUSTED_TYPES",
    "ArtifactError",
    "ArtifactInfo",
    "ArtifactVerdict",
    "Classifier",
    "UnsafeArtifactError",
    "UnsupportedFormatError",
    "classify_artifact_bytes",
    "external_data_locations",
    "hidden_code",
    "import_loaders",
    "inspect_artifact",
    "load_skops",
    "open_onnx_session",
    "untrusted_skops_types",
    "verify_artifact",
]
