"""One evaluation on the operator's Dask cluster, up to the report's comparison sections.

Checks everything that needs no cluster first (scheduler configured, metrics supported, the
manifest's pin, the segment columns), then connects, scores and evaluates on the workers.
Every failure is a DistributedError whose message the report shows as is.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluators.artifacts.benchmark_data import (
    BenchmarkError,
    check_location,
    local_path,
    read_capped,
    read_chunks,
    scheme_of,
)
from evaluators.artifacts.model_worker import BASELINE, CANDIDATE
from evaluators.candidate import ModelConfig, Task
from evaluators.distributed.cluster import connect, require_scheduler
from evaluators.distributed.comparison import (
    binary_view,
    calibration_of,
    comparison_of,
    layout_of,
    metrics_of,
    multiclass_view,
    one_vs_rest_layout,
    regression_view,
    summers_of,
)
from evaluators.distributed.engine import evaluate_partitions, evaluate_summed
from evaluators.distributed.errors import DistributedError
from evaluators.distributed.manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    Manifest,
    parse_manifest,
)
from evaluators.distributed.partition_tasks import Job, ModelBytes, PartitionSpec
from evaluators.policy import Policy
from evaluators.statistics.compare import Comparison
from evaluators.statistics.mergeable.evaluation import OVERALL

MAX_WEIGHTS_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class DaskOutcome:
    comparison: Comparison
    uri: str
    sha256: str  # the manifest's (the pin)
    rows: int
    leaked: tuple[str, ...]  # leakage ids found among the benchmark's id column
    partitions: int


@dataclass(frozen=True)
class Located:
    manifest: Manifest
    part_uris: list[str]


def locate(uri: str, sha256: str, *, base_dir: Path | None, roots: Sequence[str] | None) -> Located:
    """Read the manifest of the benchmark directory `uri` and check it against the pin."""
    if roots is not None:
        check_location(uri, base_dir=base_dir, roots=roots)
    if scheme_of(uri) in ("", "file"):
        directory = local_path(uri, base_dir).resolve()
        if not directory.is_dir():
            raise DistributedError(
                f"benchmark {uri} is not a directory of partitions with a {MANIFEST_NAME} "
                "(the dask engine reads partitioned Parquet)"
            )
        base = str(directory)
        sep = os.sep
    else:
        base, sep = uri.rstrip("/"), "/"
    manifest_uri = f"{base}{sep}{MANIFEST_NAME}"
    try:
        data, digest = read_capped(
            read_chunks(manifest_uri, base_dir=None, timeout_s=60.0),
            uri=manifest_uri,
            max_bytes=MAX_MANIFEST_BYTES,
        )
    except (OSError, BenchmarkError):
        raise DistributedError(f"benchmark {uri}: its {MANIFEST_NAME} cannot be read") from None
    if digest != sha256:
        raise DistributedError(
            f"benchmark {uri}: {MANIFEST_NAME} does not match the sha256 pin in .shipyard.yml "
            f"({sha256}); nothing was evaluated"
        )
    manifest = parse_manifest(data)
    return Located(manifest, [f"{base}{sep}{p.file}" for p in manifest.partitions])


def _model(model_dir: Path, config: ModelConfig) -> ModelBytes:
    path = model_dir / config.weights
    # As the local loader: a weights file must not lead (by symlink) out of its model.
    if not path.resolve().is_relative_to(model_dir.resolve()):
        raise DistributedError(f"{config.weights} points outside the model directory")
    if path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise DistributedError(f"{model_dir.name}: the weights file is too large to send")
    data = path.read_bytes()
    return ModelBytes(config.model_dump(mode="json"), data, hashlib.sha256(data).hexdigest())


def evaluate_on_dask(
    *,
    scheduler: str | None,
    policy: Policy,
    config: ModelConfig,
    candidate_dir: Path,
    baseline_dir: Path | None,
    baseline_config: ModelConfig | None,
    benchmark_base_dir: Path | None,
    benchmark_roots: Sequence[str] | None,
    leakage_ids: frozenset[str] = frozenset(),
    say: Callable[[str], None] = lambda _: None,
) -> DaskOutcome:
    """The comparison of candidate and production on the partitioned benchmark, computed on
    the cluster at `scheduler`; raises DistributedError (or BenchmarkError) with the reason."""
    address = require_scheduler(scheduler)
    overall_metrics, segment_metrics = metrics_of(policy, config.task)
    if baseline_dir is None or baseline_config is None:
        raise DistributedError(
            "an evaluation without a production model is not supported on the dask engine"
        )
    bench = policy.benchmark
    assert bench is not None
    say("loading benchmark")
    located = locate(bench.uri, bench.sha256, base_dir=benchmark_base_dir, roots=benchmark_roots)
    manifest = located.manifest
    absent = [c for c in bench.segment_columns if c not in manifest.segments]
    if absent:
        raise DistributedError(
            f"the manifest lists no values for segment column(s) {', '.join(absent)}"
        )
    segments = {c: manifest.segments[c] for c in bench.segment_columns}
    labels = {c: s.labels() for c, s in segments.items()}
    layout = layout_of(
        policy,
        {c: len(v) for c, v in labels.items()},
        [*overall_metrics, *segment_metrics],
        threshold=config.threshold,
    )
    positive = config.positive_class if config.positive_class is not None else 1
    classes = tuple(str(c) for c in config.classes or ())
    if config.task is Task.MULTICLASS and not classes:
        # The local engine may take them from the benchmark's labels; here no process sees
        # them all, so the probabilities' columns must be named up front.
        raise DistributedError(
            "multiclass on the dask engine needs the model's classes listed in config.yaml "
            "(classes:), in the order of its probabilities"
        )
    binary = config.task is Task.BINARY
    job = Job(
        models={
            CANDIDATE: _model(candidate_dir, config),
            BASELINE: _model(baseline_dir, baseline_config),
        },
        label_column=bench.label_column,
        positive_class=str(positive),
        row_id_column=manifest.row_id_column,
        segments=segments,
        thresholds=tuple(policy.calibration.thresholds) if binary else (),
        memory_mb=policy.limits.memory_mb,
        timeout_s=float(policy.limits.timeout_seconds),
        leakage_ids=leakage_ids,
        id_column=bench.id_column,
        task=config.task,
        classes=classes,
    )
    specs = [
        PartitionSpec(i, uri, p.sha256, p.rows)
        for i, (uri, p) in enumerate(zip(located.part_uris, manifest.partitions, strict=True))
    ]
    say("scoring and comparing on the cluster")
    client = connect(address)
    try:
        if config.task is not Task.BINARY:  # one pass of sums (and multiclass' classes)
            everything = [*overall_metrics, *segment_metrics]
            summed = evaluate_summed(
                client,
                specs,
                job,
                layout,
                summers_of(config.task, everything),
                one_vs_rest=one_vs_rest_layout(layout, everything),
                range_rows=policy.statistics.range_rows,
                timeout_s=job.timeout_s,
            )
            views = {Task.REGRESSION: regression_view, Task.MULTICLASS: multiclass_view}
            view, calibration = views[config.task](summed, layout), None
            leaked = summed.sums.leaked
        else:
            merged = evaluate_partitions(
                client,
                specs,
                job,
                layout,
                range_rows=policy.statistics.range_rows,
                timeout_s=job.timeout_s,
            )
            columns = merged.evaluation.columns
            view, leaked = binary_view(columns, layout), merged.leaked
            calibration = calibration_of(
                merged.evaluation.calibration, columns[OVERALL], merged.above, policy.calibration
            )
        comparison = comparison_of(
            view=view,
            calibration=calibration,
            labels=labels,
            policy=policy,
            overall_metrics=overall_metrics,
            segment_metrics=segment_metrics,
            layout=layout,
        )
    except DistributedError:
        raise
    except ValueError as exc:  # the statistics' own checks (NaN scores, labels, …)
        raise DistributedError(f"the statistics could not be computed: {str(exc)[:300]}") from None
    except Exception as exc:
        if type(exc).__name__ == "KilledWorker":  # a task took down workers repeatedly
            raise DistributedError(
                "a partition's task ended the Dask workers that ran it (memory?); "
                "the evaluation did not finish"
            ) from None
        raise
    finally:
        client.close()  # type: ignore[no-untyped-call]
    return DaskOutcome(
        comparison=comparison,
        uri=bench.uri,
        sha256=bench.sha256,
        rows=manifest.rows,
        leaked=leaked,
        partitions=len(specs),
    )
