"""Evaluation on a Dask cluster: the local engine's answers, whatever the partitioning.

One module-scoped LocalCluster (2 worker processes, 1 thread each) serves every test; the
fixture models score a partitioned copy of the fixture benchmark on its workers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from distributed import LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin
from typer.testing import CliRunner

from bot.cli.main import app
from evaluators.candidate import Task
from evaluators.distributed.cluster import connect
from evaluators.distributed.comparison import metrics_of
from evaluators.distributed.errors import DistributedError
from evaluators.evaluate import run_evaluation
from evaluators.policy import Policy, parse_policy
from evaluators.report import EvaluationReport, MetricComparison, RunStatus
from tests.http_servers import serve_directory
from tests.partitioned_benchmarks import uneven_partitions

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "fixtures/registry"
CANDIDATE = REGISTRY / "candidate_segment_regression/models/churn"
PRODUCTION = REGISTRY / "production/models/churn"
CONFUSION = ["accuracy", "precision", "recall", "f1"]
BOOTSTRAPPED = ["pr_auc", *CONFUSION]  # every interval of these comes from the bootstrap


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = pd.read_parquet(ROOT / "fixtures/benchmark/churn_benchmark.parquet").iloc[:40_000]
    # Global row ids that are not positions: the bootstrap must key on the column.
    data["row_id"] = np.arange(len(data), dtype=np.int64) * 7 + 1_000_003
    return data


@pytest.fixture(scope="module")
def benchmarks(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[Any, Any]:
    """The benchmark whole (one file) and in 1, 3 and 7 partitions of uneven sizes."""
    return uneven_partitions(frame, tmp_path_factory.mktemp("benchmarks"), seed=16)


def policy(uri: Path | str, sha: str, *, engine: str = "dask", **changes: Any) -> Policy:
    data = yaml.safe_load((REGISTRY / "shipyard.yml").read_text())
    data["latency"]["enabled"] = False
    data["benchmark"].update(uri=str(uri), sha256=sha)
    data["statistics"]["engine"] = engine
    # Every metric the dask engine computes; confusion metrics at the model's threshold.
    data["metrics"] += [{"name": name, "tolerance": 0.05} for name in BOOTSTRAPPED]
    data["segments"]["metrics"] = ["roc_auc", "log_loss", "f1", "pr_auc"]
    data.update(changes)
    return parse_policy(yaml.safe_dump(data))


def evaluate(found: Policy, scheduler: str | None) -> EvaluationReport:
    return run_evaluation(
        candidate_dir=CANDIDATE,
        baseline_dir=PRODUCTION,
        policy=found,
        dask_scheduler=scheduler,
    )


@pytest.fixture(scope="module")
def local(benchmarks: dict[Any, Any]) -> EvaluationReport:
    report = evaluate(policy(*benchmarks["whole"], engine="local"), None)
    assert report.status is RunStatus.COMPLETED, report.error
    return report


@pytest.fixture(scope="module")
def on_dask(benchmarks: dict[Any, Any], cluster: LocalCluster) -> dict[int, EvaluationReport]:
    found = {}
    for parts in (1, 3, 7):
        report = evaluate(policy(*benchmarks[parts]), cluster.scheduler_address)
        assert report.status is RunStatus.COMPLETED, report.error
        found[parts] = report
    return found


def comparisons(report: EvaluationReport) -> dict[tuple[str, str], MetricComparison]:
    """Every comparison of a report by (segment, metric); overall is segment ''."""
    out = {("", m.metric): m for m in report.overall}
    for segment in report.segments:
        for m in segment.metrics:
            out[(f"{segment.column}={segment.value}", m.metric)] = m
    return out


def test_the_dask_engine_gives_the_local_engines_auc_and_delong_intervals(
    local: EvaluationReport, on_dask: dict[int, EvaluationReport]
) -> None:
    expected = comparisons(local)
    assert len(expected) > 20  # overall and many judged segments, each with both metrics
    for parts, report in on_dask.items():
        found = comparisons(report)
        assert found.keys() == expected.keys(), parts
        for key, want in expected.items():
            got = found[key]
            assert abs(got.candidate - want.candidate) < 1e-9, (parts, key)
            assert abs(got.baseline - want.baseline) < 1e-9, (parts, key)
            if key[1] == "roc_auc":
                assert got.se is not None and want.se is not None
                assert got.se == pytest.approx(want.se, rel=1e-12, abs=0), (parts, key)
                assert got.ci_low == pytest.approx(want.ci_low, rel=1e-9), (parts, key)
                assert got.outcome is want.outcome, (parts, key)
        assert [(s.column, s.value, s.rows, s.positives) for s in report.segments] == [
            (s.column, s.value, s.rows, s.positives) for s in local.segments
        ]


def test_the_rest_of_the_report_matches_the_local_engine(
    local: EvaluationReport, on_dask: dict[int, EvaluationReport]
) -> None:
    report = on_dask[3]
    assert report.verdict is not None and local.verdict is not None
    assert report.verdict.decision is local.verdict.decision
    assert report.calibration is not None and local.calibration is not None
    for model in ("candidate", "baseline"):
        got, want = getattr(report.calibration, model), getattr(local.calibration, model)
        assert got.ece_equal_width == pytest.approx(want.ece_equal_width, rel=1e-12)
        assert got.brier == pytest.approx(want.brier, rel=1e-12)
        assert [b.count for b in got.reliability] == [b.count for b in want.reliability]
    assert report.calibration.threshold_shifts == local.calibration.threshold_shifts
    assert report.leakage == local.leakage
    assert report.benchmark is not None and report.benchmark.rows == 40_000


@pytest.fixture
def served(benchmarks: dict[Any, Any]) -> Iterator[str]:
    """The benchmarks' folder behind a loopback HTTP server, as an object store's prefix."""
    with serve_directory(benchmarks[3][0].parent) as url:
        yield url


def test_a_partitioned_benchmark_behind_a_url_gives_the_same_report(
    benchmarks: dict[Any, Any],
    on_dask: dict[int, EvaluationReport],
    cluster: LocalCluster,
    served: str,
) -> None:
    """The manifest is read and pinned by the coordinator, each part file is downloaded and
    checked against its sha256 by the worker that scores it."""
    directory, sha = benchmarks[3]
    report = evaluate(policy(f"{served}/{directory.name}/", sha), cluster.scheduler_address)
    assert report.status is RunStatus.COMPLETED, report.error
    assert comparisons(report) == comparisons(on_dask[3])
    assert report.benchmark is not None and report.benchmark.rows == 40_000


def interval(m: MetricComparison) -> tuple[float | None, ...]:
    return (m.delta, m.se, m.ci_low, m.ci_high)


def test_bootstrap_intervals_and_calibration_are_the_same_with_1_3_and_7_partitions(
    on_dask: dict[int, EvaluationReport],
) -> None:
    first = comparisons(on_dask[1])
    for parts in (3, 7):
        assert on_dask[parts].calibration == on_dask[1].calibration
        found = comparisons(on_dask[parts])
        for key, want in first.items():
            got = found[key]
            # Counts and fixed-point sums are exact: the same numbers, bit for bit.
            assert interval(got) == interval(want), (parts, key)
    methods = on_dask[1].statistics
    assert methods is not None
    for name in ["log_loss", *BOOTSTRAPPED]:
        assert "hashed row-group" in methods.interval_methods[name]


def test_bootstrapped_metrics_match_the_local_engine_and_their_intervals_closely(
    local: EvaluationReport, on_dask: dict[int, EvaluationReport]
) -> None:
    """Counts at the threshold are integers, and average precision is the local engine's own
    formula over the merged table's runs: the same values. The SEs come from hashed row groups
    instead of random ones: equal within Monte Carlo error of 1,000 resamples, not to the bit."""
    expected = comparisons(local)
    found = comparisons(on_dask[7])
    checked = [key for key in expected if key[1] in BOOTSTRAPPED]
    assert {metric for _, metric in checked} == set(BOOTSTRAPPED)
    assert len(checked) > 10  # overall five, and F1 and AP in every judged segment
    for key in checked:
        got, want = found[key], expected[key]
        assert got.candidate == pytest.approx(want.candidate, rel=1e-12, abs=0), key
        assert got.baseline == pytest.approx(want.baseline, rel=1e-12, abs=0), key
        assert got.se is not None and want.se is not None
        assert got.se == pytest.approx(want.se, rel=0.25), key


def test_a_tampered_partition_fails_closed(
    benchmarks: dict[Any, Any], cluster: LocalCluster, tmp_path: Path
) -> None:
    source, sha = benchmarks[3]
    directory = tmp_path / "tampered"
    directory.mkdir()
    for path in source.iterdir():
        (directory / path.name).write_bytes(path.read_bytes())
    part = directory / "part-00001.parquet"
    data = pd.read_parquet(part)
    data.loc[data.index[:50], "churned"] = 1 - data.loc[data.index[:50], "churned"]
    data.to_parquet(part, index=False)  # same manifest, other rows
    report = evaluate(policy(directory, sha), cluster.scheduler_address)
    assert report.status is RunStatus.ERROR
    assert report.error is not None
    assert "partition 1 (part-00001.parquet) does not match its sha256" in report.error
    assert not report.overall


def test_a_manifest_that_does_not_match_the_pin_is_refused_before_the_cluster_is_used(
    benchmarks: dict[Any, Any],
) -> None:
    directory, _ = benchmarks[3]
    report = evaluate(policy(directory, "0" * 64), "tcp://127.0.0.1:9")  # never contacted
    assert report.status is RunStatus.ERROR
    assert report.error is not None and "does not match the sha256 pin" in report.error


def test_engine_dask_without_a_scheduler_fails_and_never_runs_locally(
    benchmarks: dict[Any, Any],
) -> None:
    report = evaluate(policy(*benchmarks[3]), None)
    assert report.status is RunStatus.ERROR
    assert report.error is not None
    assert "no Dask scheduler is configured" in report.error
    assert "SHIPYARD_DASK_SCHEDULER" in report.error
    assert not report.overall


@pytest.mark.parametrize(
    ("task", "supported"),
    [
        (Task.MULTICLASS, "roc_auc, ovr_roc_auc, accuracy, f1, macro_f1, log_loss"),
        (Task.REGRESSION, "mae, rmse, r2"),
    ],
)
def test_metrics_the_mergeable_statistics_do_not_cover_are_refused_before_the_cluster(
    benchmarks: dict[Any, Any], task: Task, supported: str
) -> None:
    """The binary policy's pr_auc, precision, … for other tasks (which run there:
    tests/test_dask_tasks.py)."""
    with pytest.raises(DistributedError, match=f"supported exactly: {supported}"):
        metrics_of(policy(*benchmarks[3]), task)


def test_roc_auc_with_bootstrap_intervals_is_the_local_engines_and_the_same_for_any_partitioning(
    benchmarks: dict[Any, Any], cluster: LocalCluster
) -> None:
    """statistics.method bootstrap: the AUC's interval from binned histograms per hashed row
    group, as the local engine bins them; the point estimate stays exact."""
    bootstrap = {"method": "bootstrap", "bootstrap_resamples": 400}  # `changes` replace it whole
    whole = evaluate(
        policy(*benchmarks["whole"], statistics={**bootstrap, "engine": "local"}), None
    )
    found = {
        parts: evaluate(
            policy(*benchmarks[parts], statistics={**bootstrap, "engine": "dask"}),
            cluster.scheduler_address,
        )
        for parts in (1, 7)
    }
    for report in (whole, *found.values()):
        assert report.status is RunStatus.COMPLETED, report.error
    expected = comparisons(whole)
    one, seven = comparisons(found[1]), comparisons(found[7])
    auc = [key for key in expected if key[1] == "roc_auc"]
    assert len(auc) > 5
    for key in auc:
        assert (one[key].candidate, one[key].baseline) == (
            expected[key].candidate,
            expected[key].baseline,
        ), key
        assert (one[key].se, one[key].ci_low) == (seven[key].se, seven[key].ci_low), key
        assert one[key].se == pytest.approx(expected[key].se, rel=0.25), key
    methods = found[7].statistics
    assert methods is not None and "quantile bins" in methods.interval_methods["roc_auc"]


def test_a_weights_symlink_leaving_the_model_is_refused_before_it_is_sent(
    benchmarks: dict[Any, Any], tmp_path: Path
) -> None:
    model = tmp_path / "churn"
    shutil.copytree(CANDIDATE, model)
    weights = model / "weights/model.onnx"
    outside = tmp_path / "elsewhere.onnx"
    weights.rename(outside)
    weights.symlink_to(outside)
    report = run_evaluation(
        candidate_dir=model,
        baseline_dir=PRODUCTION,
        policy=policy(*benchmarks[3]),
        dask_scheduler="tcp://127.0.0.1:9",  # never contacted
    )
    assert report.status is RunStatus.ERROR
    assert report.error == "weights/model.onnx points outside the model directory"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_scheduler_is_retried_then_a_plain_failure() -> None:
    port = _closed_port()
    pauses: list[float] = []
    with pytest.raises(DistributedError) as caught:
        connect(
            f"tcp://operator:s3cret@127.0.0.1:{port}",
            attempts=3,
            timeout_s=0.5,
            pause_s=1.0,
            sleep=pauses.append,
        )
    assert pauses == [1.0, 1.0]  # three attempts
    message = str(caught.value)
    assert message == (
        f"could not reach the Dask scheduler at 127.0.0.1:{port} (3 attempts, 0.5 s each); "
        "the evaluation did not run"
    )
    assert "s3cret" not in message and "operator" not in message


def test_the_command_line_takes_the_scheduler_from_its_option(
    benchmarks: dict[Any, Any],
    cluster: LocalCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    on_dask: dict[int, EvaluationReport],
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("SHIPYARD_DASK_SCHEDULER", raising=False)
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(policy(*benchmarks[3]).model_dump(mode="json")))
    base = ["evaluate", str(CANDIDATE), "--baseline", str(PRODUCTION), "--policy", str(path)]
    missing = CliRunner().invoke(app, base)
    assert missing.exit_code == 2
    assert "could not evaluate" in missing.stdout and "no Dask scheduler" in missing.stdout
    found = CliRunner().invoke(
        app, [*base, "--dask-scheduler", cluster.scheduler_address, "--format", "json"]
    )
    assert found.exit_code in (0, 1), found.stderr
    report = EvaluationReport.model_validate_json(found.stdout)
    assert comparisons(report)[("", "roc_auc")].se == comparisons(on_dask[3])[("", "roc_auc")].se


@pytest.mark.parametrize("range_rows", [2_000_000, 5_000])
def test_a_cluster_without_workers_fails_after_the_policys_timeout(
    benchmarks: dict[Any, Any], range_rows: int
) -> None:
    """With one score range the result times out; with 8 the coordinator's wait for the first
    range's lookups does, before it submits the third range."""
    statistics = yaml.safe_load((REGISTRY / "shipyard.yml").read_text())["statistics"]
    statistics.update(engine="dask", range_rows=range_rows)
    limits = {"timeout_seconds": 0.5, "memory_mb": 4096}
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        started = time.monotonic()
        report = evaluate(
            policy(*benchmarks[1], limits=limits, statistics=statistics), empty.scheduler_address
        )
    assert time.monotonic() - started < 30
    assert report.status is RunStatus.ERROR
    assert report.error is not None
    assert "did not finish within 0.5 s (limits.timeout_seconds)" in report.error


def test_a_worker_with_several_threads_scores_its_partitions_one_at_a_time(
    benchmarks: dict[Any, Any], on_dask: dict[int, EvaluationReport]
) -> None:
    """Its tasks share one model process, which scores the matrix it was sent last."""
    with LocalCluster(
        n_workers=1, threads_per_worker=3, processes=False, dashboard_address=":0"
    ) as threaded:
        report = evaluate(policy(*benchmarks[7]), threaded.scheduler_address)
    assert report.status is RunStatus.COMPLETED, report.error
    assert comparisons(report) == comparisons(on_dask[7])


class _KillOnce(SchedulerPlugin):
    """Kills the worker holding the first pass-1 result, once: its scored partitions are lost."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.killed: list[int] = []

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if self.killed or finish != "memory" or not str(key).startswith("first-"):
            return
        task = self.scheduler.tasks.get(key)
        holders = list(task.who_has) if task is not None else []
        if holders and holders[0].pid:
            self.killed.append(holders[0].pid)
            os.kill(holders[0].pid, signal.SIGKILL)


def test_a_worker_killed_mid_evaluation_is_recovered_and_the_result_is_unchanged(
    benchmarks: dict[Any, Any], cluster: LocalCluster, on_dask: dict[int, EvaluationReport]
) -> None:
    plugin = _KillOnce(cluster.scheduler)
    cluster.scheduler.add_plugin(plugin, name="kill-once")
    try:
        report = evaluate(policy(*benchmarks[7]), cluster.scheduler_address)
    finally:
        cluster.scheduler.remove_plugin(name="kill-once")
    assert len(plugin.killed) == 1
    assert report.status is RunStatus.COMPLETED, report.error
    assert comparisons(report) == comparisons(on_dask[7])


class _Keys(SchedulerPlugin):
    """Records the keys of the tasks that ran, in the order they finished."""

    def __init__(self) -> None:
        self.done: list[str] = []

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "memory":
            self.done.append(str(key))

    def named(self, prefix: str) -> list[int]:
        """Where the tasks whose key starts with `prefix` finished."""
        return [i for i, key in enumerate(self.done) if key.startswith(prefix)]


def test_tables_cut_into_score_ranges_give_the_same_report(
    benchmarks: dict[Any, Any], cluster: LocalCluster, on_dask: dict[int, EvaluationReport]
) -> None:
    """statistics.range_rows 5,000: the 40,000 rows' tables in 8 score ranges per model,
    merged, prepared and looked up range by range, two ranges at a time (no task holds a
    whole table, no worker every range's). Every
    count, DeLong SE and bootstrap interval is the one-range report's, bit for bit; average
    precision adds its ranges' shares, so its point may move by rounding."""
    statistics = yaml.safe_load((REGISTRY / "shipyard.yml").read_text())["statistics"]
    statistics.update(engine="dask", range_rows=5_000)
    whole = comparisons(on_dask[1])
    for parts in (1, 7):
        keys = _Keys()
        cluster.scheduler.add_plugin(keys, name="keys")
        try:
            report = evaluate(
                policy(*benchmarks[parts], statistics=statistics), cluster.scheduler_address
            )
        finally:
            cluster.scheduler.remove_plugin(name="keys")
        assert report.status is RunStatus.COMPLETED, report.error
        assert len(keys.named("prepared-")) == 8
        assert len(keys.named("lookup-")) == 8 * parts
        for r in range(2, 8):  # two ranges at a time: r waits for r - 2's lookups
            run = keys.done[keys.named("prepared-")[0]].split("-")[1]
            (prepared,) = keys.named(f"prepared-{run}-{r}")
            assert prepared > max(keys.named(f"lookup-{run}-{r - 2}-")), r
        assert report.calibration == on_dask[1].calibration
        found = comparisons(report)
        assert found.keys() == whole.keys()
        for key, want in whole.items():
            got = found[key]
            if key[1] == "pr_auc":
                assert got.candidate == pytest.approx(want.candidate, rel=1e-14, abs=0), key
                assert got.delta == pytest.approx(want.delta, rel=1e-12, abs=1e-16), key
                assert got.se == want.se, key  # from integer histograms
            else:
                assert interval(got) == interval(want), (parts, key)


def test_dask_counts_what_the_engines_results_hold() -> None:
    """A cluster with a memory limit spills and pauses by what Dask thinks its workers hold:
    a count table and a scored partition count as their arrays, not as a few dozen bytes."""
    from dask.sizeof import sizeof

    from evaluators.distributed import partition_tasks
    from evaluators.statistics.mergeable.counts import count_table
    from evaluators.statistics.mergeable.evaluation import Rows

    n = 100_000
    table = count_table(score=np.linspace(0, 1, n), label=np.arange(n) % 2)
    arrays = sum(a.nbytes for a in (table.segment, table.score, table.pos, table.neg))
    assert arrays <= sizeof(table) < arrays + 10_000
    rows = Rows(
        row_id=np.arange(n),
        label=np.zeros(n, np.int8),
        candidate=np.zeros(n, np.float32),
        baseline=np.zeros(n, np.float32),
        codes={"region": np.zeros(n, np.int8)},
    )
    scored = partition_tasks.Scored(compact=rows, above=np.zeros((1, 3), np.int64))
    assert sizeof(scored) >= n * (8 + 1 + 4 + 4 + 1)
