"""What runs on a Dask worker: read and verify one partition, score it, pass 1 and pass 2.

A partition is used only after its bytes match the manifest's sha256. Inference goes through
the local path's own worker process (`model_worker.ModelWorker`: the safe loader, RLIMIT_AS,
the policy's timeout, never pickle); one such process per Dask worker holds both models and
serves every partition that worker scores. The models travel as bytes (config.yaml and the
weights file) and are written into a private directory on the worker, so a cluster needs no
shared filesystem for them.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import io
import pkgutil
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import reduce
from operator import add
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluators.artifacts.benchmark_data import (
    DEFAULT_MAX_BYTES,
    BenchmarkError,
    parquet_frame,
    read_chunks,
)
from evaluators.artifacts.inference import InferenceInputError, feature_matrix
from evaluators.artifacts.model_worker import BASELINE, CANDIDATE, ModelWorker
from evaluators.candidate import ModelConfig, Task
from evaluators.distributed.errors import DistributedError
from evaluators.distributed.manifest import SegmentValues
from evaluators.distributed.sizes import register_dataclasses
from evaluators.statistics.codes import compact_codes
from evaluators.statistics.mergeable.counts import ClassCounts, Offsets, RankCounts
from evaluators.statistics.mergeable.evaluation import (
    FirstPass,
    InRange,
    Layout,
    Lookup,
    Prepared,
    Rows,
    SecondPass,
    by_range,
    first_pass,
    prepare_range,
    second_of,
)
from evaluators.statistics.mergeable.ranges import (
    Key,
    Tables,
    cuts_of,
    join_rank_counts,
    range_offsets,
    range_rank_counts,
    slice_counts,
    split_tables,
)


@dataclass(frozen=True)
class ModelBytes:
    """One model as the workers receive it: its config and the weights file's bytes."""

    config: dict[str, Any]  # ModelConfig, JSON-dumped
    weights: bytes
    sha256: str


@dataclass(frozen=True)
class Job:
    """Everything a worker needs besides the partition itself (sent once, shared)."""

    models: dict[str, ModelBytes]  # candidate, baseline
    label_column: str
    positive_class: str
    row_id_column: str
    segments: dict[str, SegmentValues]  # codes in the order of the values, missing last
    thresholds: tuple[float, ...]
    memory_mb: int
    timeout_s: float
    leakage_ids: frozenset[str] = frozenset()
    id_column: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    task: Task = Task.BINARY
    classes: tuple[str, ...] = ()  # multiclass: the labels of the probabilities' columns

    @property
    def key(self) -> tuple[str, ...]:
        return (*(m.sha256 for m in self.models.values()), str(self.memory_mb))


@dataclass(frozen=True)
class PartitionSpec:
    index: int
    uri: str  # absolute path or URI of the part file
    sha256: str
    rows: int


@dataclass(frozen=True)
class Scored:
    """One scored partition, kept in worker memory between the passes: compact (labels and
    segment codes in their smallest integer type, scores in the type the model gave, float32
    for ONNX), about 20 bytes a binary row instead of 56. `rows` widens them for a pass."""

    compact: Rows
    above: np.ndarray  # (thresholds, 3): candidate >= t, baseline >= t, on different sides
    leaked: tuple[str, ...] = field(default=())

    @property
    def rows(self) -> Rows:
        c = self.compact
        integer = np.issubdtype(c.label.dtype, np.integer)
        return Rows(
            row_id=c.row_id,
            label=c.label.astype(np.int64) if integer else c.label,
            candidate=c.candidate.astype(np.float64),
            baseline=c.baseline.astype(np.float64),
            codes={column: codes.astype(np.int64) for column, codes in c.codes.items()},
        )


# -- the model process of this Dask worker ---------------------------------------------------


@dataclass
class _Models:
    """A model process of this Dask worker: used by one task at a time (`lock`: it scores the
    matrix last sent, so two threads must not interleave), evicted only when no task uses it."""

    worker: ModelWorker
    directory: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0
    used: float = 0.0

    def close(self) -> None:
        self.worker.close()
        shutil.rmtree(self.directory, ignore_errors=True)


_LOCK = threading.Lock()
_MODELS: dict[tuple[str, ...], _Models] = {}
MAX_MODEL_SETS = 2  # evaluations sharing a Dask worker keep their models loaded


def _close_all() -> None:
    with _LOCK:
        for models in _MODELS.values():
            models.close()
        _MODELS.clear()


atexit.register(_close_all)


@contextlib.contextmanager
def _using(job: Job) -> Iterator[ModelWorker]:
    """This Dask worker's model process for `job`'s models (started and loaded once), held
    for one task."""
    with _LOCK:
        models = _MODELS.get(job.key)
        if models is None:
            idle = sorted((m.used, key) for key, m in _MODELS.items() if m.users == 0)
            for _, key in idle[: max(0, len(_MODELS) - MAX_MODEL_SETS + 1)]:
                _MODELS.pop(key).close()
            models = _MODELS[job.key] = _Models(*_start(job))
        models.users += 1
    try:
        with models.lock:
            yield models.worker
    finally:
        with _LOCK:
            models.users -= 1
            models.used = time.monotonic()


def _start(job: Job) -> tuple[ModelWorker, Path]:
    """Write the models into a private directory; start, load and check their process."""
    directory = Path(tempfile.mkdtemp(prefix="shipyard-dask-models-"))
    models = {}
    for role, model in job.models.items():
        config = ModelConfig.model_validate(model.config)
        model_dir = directory / role
        weights = model_dir / config.weights
        # Checked before anything is created: the path comes from the repository.
        if not weights.resolve().is_relative_to(model_dir.resolve()):
            shutil.rmtree(directory, ignore_errors=True)
            raise DistributedError(f"{_name(role)} model: the weights path leaves the model")
        weights.parent.mkdir(parents=True, exist_ok=True)
        weights.write_bytes(model.weights)
        models[role] = (model_dir, config)
    worker = ModelWorker(timeout_s=job.timeout_s)
    worker.load(models, memory_mb=job.memory_mb, timeout_s=job.timeout_s)
    for role, model in job.models.items():
        loaded = worker.loaded(role)
        problem = (
            str(loaded.artifact_error)
            if loaded.artifact_error is not None
            else loaded.failure.message
            if loaded.failure is not None
            else None
        )
        if problem is None and loaded.sha256 != model.sha256:
            problem = "the weights changed on their way to the worker"
        if problem is not None:
            worker.close()
            shutil.rmtree(directory, ignore_errors=True)
            raise DistributedError(f"{_name(role)} model: {problem}")
    return worker, directory


def _name(role: str) -> str:
    return "production" if role == BASELINE else role


# -- one partition -----------------------------------------------------------------------------


def read_partition(spec: PartitionSpec, *, max_bytes: int) -> pd.DataFrame:
    """The part file's bytes, verified against the manifest, then parsed."""
    digest, buffer, size = hashlib.sha256(), io.BytesIO(), 0
    try:
        for chunk in read_chunks(spec.uri, base_dir=None, timeout_s=300.0):
            size += len(chunk)
            if size > max_bytes:
                raise DistributedError(f"partition {spec.index} is larger than allowed")
            digest.update(chunk)
            buffer.write(chunk)
    except (OSError, BenchmarkError):
        raise DistributedError(f"partition {spec.index} ({_file(spec)}) cannot be read") from None
    if digest.hexdigest() != spec.sha256:
        raise DistributedError(
            f"partition {spec.index} ({_file(spec)}) does not match its sha256 in the pinned "
            "manifest; nothing was evaluated"
        )
    try:
        frame = parquet_frame(buffer.getbuffer())
    except Exception as exc:
        raise DistributedError(
            f"partition {spec.index} ({_file(spec)}) is not readable as Parquet "
            f"({type(exc).__name__})"
        ) from None
    if len(frame) != spec.rows:
        raise DistributedError(
            f"partition {spec.index} ({_file(spec)}) has {len(frame):,} rows, "
            f"the manifest says {spec.rows:,}"
        )
    return frame


def _file(spec: PartitionSpec) -> str:
    return spec.uri.rsplit("/", 1)[-1]


def _codes(frame: pd.DataFrame, column: str, segment: SegmentValues, index: int) -> np.ndarray:
    text = frame[column].astype("string")
    lookup = pd.Index(list(segment.values), dtype="string")
    codes = np.asarray(lookup.get_indexer(text), dtype=np.int64)
    absent = text.isna().to_numpy()
    codes[absent] = len(segment.values) if segment.missing else -1
    if (codes < 0).any():
        raise DistributedError(
            f"partition {index}: segment column {column} has values the manifest does not list"
        )
    return codes


def _labels(values: pd.Series, job: Job, index: int) -> np.ndarray:
    """0/1 for the positive class, class indices (multiclass) or numeric targets (regression)."""
    if job.task is Task.BINARY:
        return np.asarray(values.astype(str) == job.positive_class, dtype=np.int64)
    if job.task is Task.MULTICLASS:
        text = values.astype("string")
        found = pd.Index(list(job.classes), dtype="string").get_indexer(text)
        unknown = sorted(set(text[found < 0].fillna("<missing>")))[:5]
        if unknown:
            raise DistributedError(
                f"partition {index}: labels {unknown} are not among the model's classes"[:500]
            )
        return np.asarray(found, dtype=np.int64)
    try:
        numbers = pd.to_numeric(values, errors="raise").astype("Float64")
        targets: np.ndarray = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise DistributedError(
            f"partition {index}: the target column {job.label_column} is not numeric"
        ) from None
    if not np.isfinite(targets).all():
        raise DistributedError(
            f"partition {index}: the target column {job.label_column} has missing or infinite "
            "values"
        )
    return targets


def _expected_shape(job: Job, rows: int) -> tuple[tuple[int, ...], str]:
    if job.task is Task.MULTICLASS:
        return (rows, len(job.classes)), "one probability per class and row"
    if job.task is Task.REGRESSION:
        return (rows,), "one prediction per row"
    return (rows,), "one probability per row"


def score_partition(spec: PartitionSpec, job: Job) -> Scored:
    """Read, verify and score one partition: its rows for the two passes."""
    frame = read_partition(spec, max_bytes=job.max_bytes)
    wanted = [job.label_column, job.row_id_column, *job.segments]
    if job.id_column:
        wanted.append(job.id_column)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DistributedError(f"partition {spec.index} lacks column(s) {', '.join(missing)}")
    row_id = frame[job.row_id_column]
    if not pd.api.types.is_integer_dtype(row_id.dtype):
        raise DistributedError(
            f"partition {spec.index}: the row id column {job.row_id_column} is not integer"
        )
    label = _labels(frame[job.label_column], job, spec.index)
    codes = {c: _codes(frame, c, values, spec.index) for c, values in job.segments.items()}
    scores = {}
    matrices = {}
    for role in (CANDIDATE, BASELINE):
        config = ModelConfig.model_validate(job.models[role].config)
        try:
            matrices[role] = feature_matrix(frame, config.features)
        except InferenceInputError as exc:
            raise DistributedError(f"partition {spec.index}: {exc}"[:500]) from None
    with _using(job) as worker:
        for role in (CANDIDATE, BASELINE):
            worker.send_features(role, matrices.pop(role))
            result = worker.predict(role)
            if not result.ok or result.proba is None:
                raise DistributedError(
                    f"{_name(role)} model on partition {spec.index}: {result.message}"
                )
            proba = np.asarray(result.proba)
            scores[role] = proba if proba.dtype == np.float32 else proba.astype(np.float64)
            shape, what = _expected_shape(job, len(frame))
            if scores[role].shape != shape:
                raise DistributedError(f"{_name(role)} model: not {what}")
    leaked: tuple[str, ...] = ()
    if job.id_column and job.leakage_ids:
        ids = frame[job.id_column].astype("string").dropna()
        leaked = tuple(sorted(set(ids[ids.isin(job.leakage_ids)])))
    cand, base = scores[CANDIDATE].astype(np.float64), scores[BASELINE].astype(np.float64)
    above = np.array(
        [
            [(cand >= t).sum(), (base >= t).sum(), ((cand >= t) != (base >= t)).sum()]
            for t in job.thresholds
        ],
        dtype=np.int64,
    ).reshape(len(job.thresholds), 3)
    compact = Rows(
        row_id=row_id.to_numpy(np.int64),
        label=label if job.task is Task.REGRESSION else compact_codes(label, len(job.classes) or 2),
        candidate=scores[CANDIDATE],
        baseline=scores[BASELINE],
        codes={
            column: compact_codes(c, len(job.segments[column].values) + 1)
            for column, c in codes.items()
        },
    )
    return Scored(compact=compact, above=above, leaked=leaked)


@dataclass(frozen=True)
class FirstPart:
    """Pass 1 of some partitions, with the side sums (threshold shifts, leaked ids)."""

    first: FirstPass
    above: np.ndarray
    leaked: tuple[str, ...]


def _rows(scored: Scored, problem: int | None) -> Rows:
    return scored.rows if problem is None else scored.rows.one_vs_rest(problem)


def first_part(scored: Scored, layout: Layout, problem: int | None = None) -> FirstPart:
    """Pass 1 (of the one-vs-rest `problem` of multiclass rows, if given)."""
    return FirstPart(first_pass(_rows(scored, problem), layout), scored.above, scored.leaked)


def merge_first_parts(parts: list[FirstPart]) -> FirstPart:
    from evaluators.statistics.mergeable.evaluation import merge_first

    return FirstPart(
        merge_first([p.first for p in parts]),
        sum((p.above for p in parts[1:]), parts[0].above.copy()),
        tuple(sorted({i for p in parts for i in p.leaked})),
    )


def without_tables(part: FirstPart) -> FirstPart:
    """The pass-1 part minus its count tables (merged on their own, range by range)."""
    return FirstPart(replace(part.first, tables={}), part.above, part.leaked)


def cuts_part(rest: FirstPart, ranges: int) -> tuple[np.ndarray, np.ndarray]:
    return cuts_of(rest.first.sketches, ranges)


def split_part(part: FirstPart, cuts: tuple[np.ndarray, np.ndarray]) -> list[Tables]:
    """A partition's count tables, sliced by score range."""
    return split_tables(part.first.tables, cuts)


def counts_part(slices: list[Tables]) -> list[dict[Key, ClassCounts]]:
    """A partition's class counts per score range and table (what the offsets need)."""
    return [slice_counts(tables) for tables in slices]


def offsets_part(*parts: list[dict[Key, ClassCounts]]) -> list[dict[Key, Offsets]]:
    """Each range's offsets, from every partition's class counts per range."""
    totals = [
        {key: reduce(add, (part[r][key] for part in parts)) for key in parts[0][r]}
        for r in range(len(parts[0]))
    ]
    return range_offsets(totals)


def prepare_part(
    tables: Tables,
    offsets: list[dict[Key, Offsets]],
    cuts: tuple[np.ndarray, np.ndarray],
    layout: Layout,
    range_: int,
) -> Prepared:
    return prepare_range(tables, layout, offsets=offsets[range_], cuts=cuts, range_=range_)


def auc_part(
    tables: Tables, offsets: list[dict[Key, Offsets]], range_: int
) -> dict[Key, RankCounts]:
    return range_rank_counts(tables, offsets[range_])


def join_auc(*shares: dict[Key, RankCounts]) -> dict[Key, RankCounts]:
    return join_rank_counts(list(shares))


def rows_by_range(
    scored: Scored, cuts: tuple[np.ndarray, np.ndarray], problem: int | None = None
) -> list[tuple[InRange, InRange]]:
    """Pass 2 begins: the partition's rows (of one one-vs-rest `problem`, if given) split by
    score range, for the ranges' lookups."""
    return by_range(_rows(scored, problem), cuts)


def second_part(
    scored: Scored, lookups: list[Lookup], layout: Layout, problem: int | None = None
) -> SecondPass:
    """Pass 2 on one partition, from its lookups in every range."""
    return second_of(_rows(scored, problem), lookups, layout)


ROWS = "rows"


@dataclass(frozen=True)
class SumsPart:
    """Sums that merge by addition, keyed (per segment column, or column and metric family),
    of some partitions, with the leaked ids."""

    sums: dict[Any, Any]
    leaked: tuple[str, ...]


Summer = Callable[..., Any]  # (label=, candidate=, baseline=, codes=, n_segments=, group=, groups=)


def sums_part(scored: Scored, layout: Layout, summers: dict[str, Summer]) -> SumsPart:
    """Each summer's sums per (segment column, summer's name) — `regression_sums`, or
    `stat_sums` of one metric family — and each column's rows per segment (key (column,
    ROWS))."""
    rows = scored.rows
    group = layout.row_groups(rows.row_id)
    sums: dict[Any, Any] = {}
    for column, k in layout.segments().items():
        codes = rows.codes_of(column)
        for name, summer in summers.items():
            sums[(column, name)] = summer(
                label=rows.label,
                candidate=rows.candidate,
                baseline=rows.baseline,
                codes=codes,
                n_segments=k,
                group=group,
                groups=layout.groups,
            )
        n = rows.row_id.shape[0]
        sums[(column, ROWS)] = np.array([n]) if codes is None else np.bincount(codes, minlength=k)
    return SumsPart(sums, scored.leaked)


def merge_sums_parts(parts: list[SumsPart]) -> SumsPart:
    return SumsPart(
        {key: reduce(add, (p.sums[key] for p in parts)) for key in parts[0].sums},
        tuple(sorted({i for p in parts for i in p.leaked})),
    )


def merge_second_parts(parts: list[SecondPass]) -> SecondPass:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _register_sizes() -> None:
    """Dask must see what these results hold, to spill them under a memory limit (sizes.py):
    this module's dataclasses and every mergeable statistics module's."""
    from evaluators.statistics import mergeable

    modules = [
        importlib.import_module(f"{mergeable.__name__}.{info.name}")
        for info in pkgutil.iter_modules(mergeable.__path__)
    ]
    register_dataclasses(sys.modules[__name__], *modules)


_register_sizes()
