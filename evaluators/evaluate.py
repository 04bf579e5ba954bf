"""One evaluation, end to end: candidate vs production on the pinned benchmark -> EvaluationReport.

The same function runs in the bot and behind `shipyard evaluate` on a laptop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evaluators import __version__
from evaluators.artifacts import prediction_cache
from evaluators.artifacts.benchmark_data import BenchmarkData, BenchmarkError, load_benchmark
from evaluators.artifacts.inference import InferenceInputError, InferenceResult, feature_matrix
from evaluators.artifacts.loading import ArtifactError
from evaluators.artifacts.model_worker import (
    BASELINE,
    CANDIDATE,
    LATENCY_ROWS,
    ModelWorker,
    WorkerGone,
)
from evaluators.bounded import MAX_MANIFEST_BYTES, read_text
from evaluators.candidate import (
    ClaimedResults,
    ModelConfig,
    Task,
    parse_claimed_results,
    parse_data_manifest,
    parse_model_config,
)
from evaluators.distributed.errors import DistributedError
from evaluators.errors import DocumentError
from evaluators.judgement.fingerprint import make_fingerprint
from evaluators.judgement.trust import check_claims, check_leakage
from evaluators.judgement.verdict import decide
from evaluators.policy import Policy
from evaluators.report import (
    BenchmarkInfo,
    EvaluationReport,
    LatencySection,
    LeakageCheck,
    ModelIdentity,
    RunStatus,
)
from evaluators.statistics.compare import Comparison, compare

Progress = Callable[[str], None]


class EvaluationInputError(ValueError):
    """The inputs cannot be evaluated; the message says which and why."""


NO_PRODUCTION_LABEL = "class-prior baseline (no production model)"


def _read_config(model_dir: Path) -> ModelConfig:
    if not model_dir.is_dir():
        what = "is not a directory" if model_dir.exists() else "does not exist"
        raise EvaluationInputError(f"the model directory {model_dir} {what}")
    path = model_dir / "config.yaml"
    if not path.is_file():
        raise EvaluationInputError(f"{model_dir}: config.yaml is missing")
    return parse_model_config(path.read_text(), source=str(path))


def _weights(model_dir: Path, config: ModelConfig) -> Path:
    path = model_dir / config.weights
    if not path.is_file():
        raise EvaluationInputError(
            f"{model_dir}: the weights file {config.weights} named in config.yaml is missing"
        )
    return path


def _labels(frame: pd.DataFrame, column: str, config: ModelConfig) -> npt.NDArray[Any]:
    """Benchmark labels as the comparison wants them: 0/1, or class indices."""
    values = frame[column]
    if config.task is Task.BINARY:
        positive = config.positive_class if config.positive_class is not None else 1
        binary: npt.NDArray[Any] = (values.astype(str) == str(positive)).to_numpy(np.int64)
        return binary
    if config.task is Task.MULTICLASS:
        classes = [str(c) for c in (config.classes or sorted(values.astype(str).unique()))]
        index = {c: i for i, c in enumerate(classes)}
        mapped = values.astype(str).map(index)
        if mapped.isna().any():
            unknown = sorted(set(values.astype(str)) - set(index))[:5]
            raise EvaluationInputError(f"labels {unknown} are not among the model's classes")
        indices: npt.NDArray[Any] = mapped.to_numpy(np.int64)
        return indices
    targets: npt.NDArray[Any] = values.to_numpy(np.float64)
    return targets


def _dummy_baseline(
    y: npt.NDArray[np.int64], task: Task, n_classes: int
) -> npt.NDArray[np.float64]:
    """No production model yet: compare with the class prior, as DummyClassifier('prior')."""
    if task is Task.BINARY:
        return np.full(len(y), float(y.mean()))
    if task is Task.MULTICLASS:
        prior = np.bincount(y, minlength=n_classes) / len(y)
        return np.tile(prior, (len(y), 1))
    return np.full(len(y), float(np.mean(y)))


def run_evaluation(
    *,
    candidate_dir: Path,
    baseline_dir: Path | None,
    policy: Policy,
    benchmark_base_dir: Path | None = None,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    benchmark_roots: Sequence[str] | None = None,
    parallel_inference: bool = False,
    worker: ModelWorker | None = None,
    on_compared: Callable[[Comparison], None] | None = None,
    dask_scheduler: str | None = None,
) -> EvaluationReport:
    """Evaluate; failures of the inputs become a report with status error, never a crash.

    Both models live in one worker process (`model_worker`), verified and loaded while the
    benchmark loads here. `parallel_inference` measures latency while the models score: the
    wall time of one on a laptop or CI runner, where one evaluation has both cores (the bot,
    running several evaluations, measures latency alone after scoring). `worker` is one
    started early by the caller, before its own imports, for these model directories; it is
    closed when the evaluation ends; the caller may have sent it the models already.
    `on_compared` is handed the comparison as soon as it exists, before latency is awaited
    (the command line draws the HTML report's figures meanwhile); it must return quickly.
    `dask_scheduler` (the operator's, never the repository's) serves policies with
    `statistics.engine: dask`; without it they fail, they never run locally.
    """
    say = progress or (lambda _: None)
    started = datetime.now(UTC)
    durations: dict[str, float] = {}
    try:
        config = _read_config(candidate_dir)
    except (DocumentError, EvaluationInputError) as exc:
        if worker is not None:
            worker.close()
        return _error_report(candidate_dir.name, "unknown", started, policy, str(exc))
    try:
        return _evaluate(
            config,
            candidate_dir,
            baseline_dir,
            policy,
            benchmark_base_dir,
            say,
            started,
            durations,
            cache_dir,
            benchmark_roots,
            parallel_inference,
            worker,
            on_compared=on_compared,
            dask_scheduler=dask_scheduler,
        )
    except (
        DocumentError,
        EvaluationInputError,
        BenchmarkError,
        ArtifactError,
        DistributedError,
    ) as exc:
        return _error_report(config.name, config.task.value, started, policy, str(exc))
    finally:
        if worker is not None:
            worker.close()  # idempotent: closed already unless the inputs were refused early


def _evaluate(
    config: ModelConfig,
    candidate_dir: Path,
    baseline_dir: Path | None,
    policy: Policy,
    benchmark_base_dir: Path | None,
    say: Progress,
    started: datetime,
    durations: dict[str, float],
    cache_dir: Path | None,
    benchmark_roots: Sequence[str] | None = None,
    parallel_inference: bool = False,
    worker: ModelWorker | None = None,
    *,
    on_compared: Callable[[Comparison], None] | None = None,
    dask_scheduler: str | None = None,
) -> EvaluationReport:
    if policy.benchmark is None:
        raise EvaluationInputError(".shipyard.yml names no benchmark (benchmark.uri, sha256)")
    baseline_config = _read_config(baseline_dir) if baseline_dir is not None else None
    if baseline_config is not None and baseline_config.task is not config.task:
        raise EvaluationInputError(
            f"candidate task {config.task.value} differs from production's "
            f"{baseline_config.task.value}"
        )
    weights = _weights(candidate_dir, config)
    baseline_weights = None
    models = {CANDIDATE: (candidate_dir, config)}
    if baseline_dir is not None and baseline_config is not None:
        baseline_weights = _weights(baseline_dir, baseline_config)
        models[BASELINE] = (baseline_dir, baseline_config)
    if policy.statistics.engine == "dask":
        if worker is not None:
            worker.close()  # the models load on the cluster's workers
        return _evaluate_on_dask(
            config,
            candidate_dir,
            baseline_dir,
            baseline_config,
            weights,
            baseline_weights,
            policy,
            benchmark_base_dir,
            benchmark_roots,
            say,
            started,
            durations,
            dask_scheduler,
            on_compared,
        )
    if worker is None:
        worker = ModelWorker()
    if not worker.roles:  # not yet told by a caller who started it early
        worker.load(
            models, memory_mb=policy.limits.memory_mb, timeout_s=policy.limits.timeout_seconds
        )
    with worker:  # the worker verifies and loads the models while the benchmark loads here
        return _evaluate_with(
            worker,
            config,
            candidate_dir,
            baseline_dir,
            baseline_config,
            weights,
            baseline_weights,
            policy,
            benchmark_base_dir,
            say,
            started,
            durations,
            cache_dir,
            benchmark_roots,
            parallel_inference,
            on_compared=on_compared,
        )


def _verified_sha(worker: ModelWorker, role: str) -> str | None:
    """The artifact's sha256 once the worker verified it; raises when it refused it."""
    loaded = worker.loaded(role)
    if loaded.artifact_error is not None:
        raise loaded.artifact_error
    return loaded.sha256


def _evaluate_with(
    worker: ModelWorker,
    config: ModelConfig,
    candidate_dir: Path,
    baseline_dir: Path | None,
    baseline_config: ModelConfig | None,
    weights: Path,
    baseline_weights: Path | None,
    policy: Policy,
    benchmark_base_dir: Path | None,
    say: Progress,
    started: datetime,
    durations: dict[str, float],
    cache_dir: Path | None,
    benchmark_roots: Sequence[str] | None,
    overlap_latency: bool,
    *,
    on_compared: Callable[[Comparison], None] | None,
) -> EvaluationReport:
    assert policy.benchmark is not None
    say("loading benchmark")
    t0 = time.perf_counter()
    try:
        bench: BenchmarkData = load_benchmark(
            policy=policy.benchmark, base_dir=benchmark_base_dir, roots=benchmark_roots
        )
    except BenchmarkError:
        for role in worker.roles:  # an unsafe artifact is reported before a bad benchmark
            _verified_sha(worker, role)
        raise
    durations["benchmark_s"] = time.perf_counter() - t0
    frame = bench.frame
    y = _labels(frame, policy.benchmark.label_column, config)
    shas = {role: _verified_sha(worker, role) for role in worker.roles}
    with_baseline = baseline_dir is not None and baseline_config is not None
    not_sent: dict[str, InferenceResult | None]
    not_sent = {
        role: _send_features(worker, role, cfg, frame)
        for role, cfg in _models(config, baseline_config).items()
    }
    measure = (
        policy.latency.enabled
        and with_baseline
        and len(frame) > 0
        and all(failure is None for failure in not_sent.values())
        and all(sha is not None for sha in shas.values())
    )
    if measure and overlap_latency:  # one evaluation on a laptop: time it while scoring
        worker.start_latency(
            rows=min(LATENCY_ROWS, len(frame)),
            policy=policy.latency,
            confidence=policy.statistics.confidence,
        )

    say("scoring candidate")
    t0 = time.perf_counter()
    candidate = _predict(
        worker, CANDIDATE, config, frame, shas[CANDIDATE], bench.sha256, cache_dir, not_sent
    )
    durations["candidate_inference_s"] = time.perf_counter() - t0
    if not candidate.ok:
        return _failed_run(config, started, policy, candidate, "candidate")
    if baseline_dir is not None and baseline_config is not None:
        say("scoring production")
        t0 = time.perf_counter()
        base = _predict(
            worker,
            BASELINE,
            baseline_config,
            frame,
            shas[BASELINE],
            bench.sha256,
            cache_dir,
            not_sent,
        )
        durations["baseline_inference_s"] = time.perf_counter() - t0
        if not base.ok:
            return _failed_run(config, started, policy, base, "production")
        assert base.proba is not None
        baseline_scores = base.proba
    else:
        n_classes = len(config.classes or []) or int(y.max()) + 1
        baseline_scores = _dummy_baseline(y, config.task, n_classes)
    assert candidate.proba is not None

    say("comparing")
    t0 = time.perf_counter()
    segments = frame[policy.benchmark.segment_columns] if policy.benchmark.segment_columns else None
    comparison = compare(
        y_true=y,
        candidate=candidate.proba,
        baseline=baseline_scores,
        segments=segments,
        policy=policy,
        task=config.task,
        threshold=config.threshold,
    )
    durations["statistics_s"] = time.perf_counter() - t0
    if on_compared is not None:
        on_compared(comparison)

    latency = None
    if measure:
        say("measuring latency")
        t0 = time.perf_counter()
        try:
            if not overlap_latency:  # the bot: measured alone, after scoring
                worker.start_latency(
                    rows=min(LATENCY_ROWS, len(frame)),
                    policy=policy.latency,
                    confidence=policy.statistics.confidence,
                )
            latency = worker.latency()
        except WorkerGone:
            latency = None  # the verdict then says latency was not measured
        durations["latency_s"] = time.perf_counter() - t0

    leakage = check_leakage(
        manifest_entries=_manifest_entries(candidate_dir),
        benchmark_ids=frame[policy.benchmark.id_column] if policy.benchmark.id_column else [],
        id_column=policy.benchmark.id_column,
    )
    return _completed(
        config,
        candidate_dir,
        baseline_dir,
        weights,
        baseline_weights,
        policy,
        started,
        durations,
        comparison,
        latency,
        leakage,
        (bench.uri, bench.sha256, bench.rows),
    )


def _evaluate_on_dask(
    config: ModelConfig,
    candidate_dir: Path,
    baseline_dir: Path | None,
    baseline_config: ModelConfig | None,
    weights: Path,
    baseline_weights: Path | None,
    policy: Policy,
    benchmark_base_dir: Path | None,
    benchmark_roots: Sequence[str] | None,
    say: Progress,
    started: datetime,
    durations: dict[str, float],
    scheduler: str | None,
    on_compared: Callable[[Comparison], None] | None,
) -> EvaluationReport:
    """Scoring and statistics on the operator's Dask cluster (a partitioned benchmark).

    Latency is not measured here: the cluster's workers are not the serving hardware.
    """
    from evaluators.distributed.run import evaluate_on_dask

    assert policy.benchmark is not None
    entries = _manifest_entries(candidate_dir)
    id_column = policy.benchmark.id_column
    wanted = frozenset(e.strip() for e in entries if e.strip()) if id_column else frozenset()
    t0 = time.perf_counter()
    outcome = evaluate_on_dask(
        scheduler=scheduler,
        policy=policy,
        config=config,
        candidate_dir=candidate_dir,
        baseline_dir=baseline_dir,
        baseline_config=baseline_config,
        benchmark_base_dir=benchmark_base_dir,
        benchmark_roots=benchmark_roots,
        leakage_ids=wanted,
        say=say,
    )
    durations["distributed_s"] = time.perf_counter() - t0
    if on_compared is not None:
        on_compared(outcome.comparison)
    # The workers return the benchmark ids that are also manifest entries: the same overlap.
    leakage = check_leakage(
        manifest_entries=entries, benchmark_ids=list(outcome.leaked), id_column=id_column
    )
    return _completed(
        config,
        candidate_dir,
        baseline_dir,
        weights,
        baseline_weights,
        policy,
        started,
        durations,
        outcome.comparison,
        None,
        leakage,
        (outcome.uri, outcome.sha256, outcome.rows),
    )


def _manifest_entries(candidate_dir: Path) -> list[str]:
    """The candidate's data_manifest.txt entries (training ids), bounded; none without one."""
    manifest = candidate_dir / "data_manifest.txt"
    if not manifest.is_file():
        return []
    return parse_data_manifest(
        read_text(manifest.read_bytes(), source=manifest.name, max_bytes=MAX_MANIFEST_BYTES)
    )


def _completed(
    config: ModelConfig,
    candidate_dir: Path,
    baseline_dir: Path | None,
    weights: Path,
    baseline_weights: Path | None,
    policy: Policy,
    started: datetime,
    durations: dict[str, float],
    comparison: Comparison,
    latency: LatencySection | None,
    leakage: LeakageCheck,
    read: tuple[str, str, int],
) -> EvaluationReport:
    """The finished report and its verdict (both engines); `read` is the benchmark's uri,
    sha256 and rows as evaluated."""
    assert policy.benchmark is not None
    uri, sha256, rows = read
    benchmark = BenchmarkInfo(
        uri=uri,
        sha256=sha256,
        rows=rows,
        label_column=policy.benchmark.label_column,
        segment_columns=list(policy.benchmark.segment_columns),
    )
    claimed = _claimed(candidate_dir)
    claims = (
        check_claims(
            claimed=claimed,
            overall=comparison.overall,
            tolerance=policy.trust.claimed_tolerance,
            also_measured=(
                {"brier": comparison.calibration.candidate.brier} if comparison.calibration else {}
            ),
        )
        if claimed is not None
        else []
    )
    fingerprint = make_fingerprint(
        candidate_dir=candidate_dir,
        candidate_weights=weights,
        baseline_dir=baseline_dir,
        baseline_weights=baseline_weights,
        benchmark_sha256=benchmark.sha256,
        policy=policy,
        evaluator_version=__version__,
    )
    report = EvaluationReport(
        model=config.name,
        task=config.task.value,
        status=RunStatus.COMPLETED,
        created_at=started,
        benchmark=benchmark,
        statistics=comparison.statistics,
        primary_metric=policy.primary_metric,
        baseline_label="production" if baseline_dir is not None else NO_PRODUCTION_LABEL,
        identity=_identity(candidate_dir, config),
        overall=comparison.overall,
        segments=comparison.segments,
        calibration=comparison.calibration,
        latency=latency,
        claimed=claims,
        leakage=leakage,
        fingerprint=fingerprint,
        durations_s={k: round(v, 3) for k, v in durations.items()},
    )
    return report.model_copy(update={"verdict": decide(report=report, policy=policy)})


def _models(config: ModelConfig, baseline_config: ModelConfig | None) -> dict[str, ModelConfig]:
    models = {CANDIDATE: config}
    if baseline_config is not None:
        models[BASELINE] = baseline_config
    return models


def _send_features(
    worker: ModelWorker, role: str, config: ModelConfig, frame: pd.DataFrame
) -> InferenceResult | None:
    """Hand the worker the model's features; the failure to report when the frame lacks them."""
    try:
        worker.send_features(role, feature_matrix(frame, config.features))
    except InferenceInputError as exc:
        return InferenceResult(RunStatus.ERROR, None, str(exc), 0.0)
    return None


def _predict(
    worker: ModelWorker,
    role: str,
    config: ModelConfig,
    frame: pd.DataFrame,
    weights_sha: str | None,
    benchmark_sha: str,
    cache_dir: Path | None,
    not_sent: dict[str, InferenceResult | None],
) -> InferenceResult:
    loaded = worker.loaded(role)
    if loaded.failure is not None:
        return loaded.failure
    assert weights_sha is not None
    key = prediction_cache.cache_key(
        weights_sha256=weights_sha, config=config, benchmark_sha256=benchmark_sha
    )
    cached = prediction_cache.load(cache_dir, key)
    if cached is not None and cached.shape[0] == len(frame):
        return InferenceResult(RunStatus.COMPLETED, cached, "reused cached outputs", 0.0)
    failure = not_sent[role]
    if failure is not None:
        return failure
    result = worker.predict(role)
    if result.ok and result.proba is not None:
        prediction_cache.store(cache_dir, key, result.proba)
    return result


MAX_CHANGELOG_EXCERPT = 600


def changelog_excerpt(text: str) -> str | None:
    """The newest entry: the first `##` section (or the first lines), bounded."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("## ")), None)
    if start is not None:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        lines = lines[start:end]
    excerpt = "\n".join(lines).strip()
    if len(excerpt) > MAX_CHANGELOG_EXCERPT:
        excerpt = excerpt[: MAX_CHANGELOG_EXCERPT - 1] + "…"
    return excerpt or None


def _identity(model_dir: Path, config: ModelConfig) -> ModelIdentity:
    changelog = model_dir / "CHANGELOG.md"
    text = changelog.read_text(encoding="utf-8", errors="replace") if changelog.is_file() else ""
    model = config.hyperparameters.get("model")
    snapshot = config.training.get("snapshot")
    return ModelIdentity(
        description=str(model)[:200] if model is not None else None,
        training_snapshot=str(snapshot)[:200] if snapshot is not None else None,
        changelog_excerpt=changelog_excerpt(text[:100_000]),
    )


def _claimed(model_dir: Path) -> ClaimedResults | None:
    path = model_dir / "eval_results.json"
    if not path.is_file():
        return None
    return parse_claimed_results(path.read_text(), source=str(path))


def _failed_run(
    config: ModelConfig,
    started: datetime,
    policy: Policy,
    result: InferenceResult,
    which: str,
) -> EvaluationReport:
    report = EvaluationReport(
        model=config.name,
        task=config.task.value,
        status=result.status,
        error=f"{which} model: {result.message}",
        created_at=started,
        primary_metric=policy.primary_metric,
    )
    return report.model_copy(update={"verdict": decide(report=report, policy=policy)})


def _error_report(
    model: str, task: str, started: datetime, policy: Policy, message: str
) -> EvaluationReport:
    report = EvaluationReport(
        model=model,
        task=task,
        status=RunStatus.ERROR,
        error=message,
        created_at=started,
        primary_metric=policy.primary_metric,
    )
    return report.model_copy(update={"verdict": decide(report=report, policy=policy)})
