"""The two passes over a partitioned benchmark on a Dask cluster, and their tree-reduced merges.

Scoring, pass 1 and pass 2 run where the partition lives; merges run on workers too, `fan_in`
parts at a time. The count tables are cut into score ranges (statistics.range_rows rows each)
and merged, prepared and looked up range by range, so no task holds a whole merged table;
the coordinator only receives the finished (small) result, and holds no other
future, so each intermediate result is released once the tasks that need it have run. A lost
worker's tasks are recomputed by Dask from their inputs (scoring included); every merge is an
exact addition, so the result does not change.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import getitem
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluators.distributed import partition_tasks as tasks
from evaluators.distributed.errors import DistributedError
from evaluators.statistics.mergeable.counts import RankCounts
from evaluators.statistics.mergeable.evaluation import (
    Evaluation,
    FirstSummary,
    Layout,
    finish,
    look_up,
)
from evaluators.statistics.mergeable.ranges import merge_slices

if TYPE_CHECKING:
    from distributed import Client, Future

FAN_IN = 8
# Rows per score range (policy statistics.range_rows): a range's merged tables (both models,
# every segment column) stay around a few hundred MB on the worker that prepares them.
RANGE_ROWS = 2_000_000
MAX_RANGES = 256  # tasks grow with partitions x ranges
IN_FLIGHT = 2  # score ranges merged, prepared and looked up at once: one works, one waits


@dataclass(frozen=True)
class Merged:
    """What the coordinator receives: the statistics and the side sums."""

    evaluation: Evaluation
    above: np.ndarray  # (thresholds, 3) counts: candidate >= t, baseline >= t, crossing
    leaked: tuple[str, ...]


@dataclass(frozen=True)
class _Summary:
    """The merged pass 1 without its tables (AUC counts instead), and the side sums."""

    first: FirstSummary
    above: np.ndarray
    leaked: tuple[str, ...]


def _summarise(rest: tasks.FirstPart, auc: dict[tuple[str, int], RankCounts]) -> _Summary:
    first = rest.first
    return _Summary(
        FirstSummary(auc, first.losses, first.calibration, first.bootstrap, first.confusion),
        rest.above,
        rest.leaked,
    )


def _finish(summary: _Summary, second: Any, layout: Layout) -> Merged:
    return Merged(finish(summary.first, second, layout), summary.above, summary.leaked)


def _job(job: tasks.Job) -> tasks.Job:
    return job


def tree_reduce(
    client: Client,
    parts: Sequence[Future[Any]],
    merge: Callable[[list[Any]], Any],
    *,
    name: str,
    fan_in: int = FAN_IN,
) -> Future[Any]:
    """Merge futures `fan_in` at a time on the workers until one is left."""
    level = list(parts)
    depth = 0
    while len(level) > 1:
        level = [
            client.submit(
                lambda *xs: merge(list(xs)),
                *level[i : i + fan_in],
                key=f"{name}-merge-{depth}-{i}",
            )
            for i in range(0, len(level), fan_in)
        ]
        depth += 1
    return level[0]


def _graph(
    client: Client,
    specs: Sequence[tasks.PartitionSpec],
    job: tasks.Job,
    layout: Layout,
    fan_in: int,
    range_rows: int,
    deadline: _Deadline,
) -> Future[Any]:
    """Submit every task (pass 2 a few ranges at a time, see `_passes`); only the last one's
    future is returned, so the scheduler releases each intermediate result (scored
    partitions, pass-1 parts, merged tables) as soon as the tasks that need it have run."""
    run = uuid.uuid4().hex[:12]  # task keys unique per evaluation: no reuse across runs
    ranges = ranges_for(sum(spec.rows for spec in specs), range_rows)
    scored = _scored(client, specs, job, run)
    return _passes(client, scored, layout, fan_in, run, ranges, deadline)


def _scored(
    client: Client, specs: Sequence[tasks.PartitionSpec], job: tasks.Job, run: str
) -> list[Future[Any]]:
    # One task holds the job (the models' bytes); every partition's task depends on it, so
    # Dask copies it once per worker. (scatter would wait for workers outside our timeout.)
    shared = client.submit(_job, job, key=f"job-{run}")
    return [
        client.submit(tasks.score_partition, spec, shared, key=f"score-{run}-{spec.index}")
        for spec in specs
    ]


def ranges_for(rows: int, range_rows: int) -> int:
    """Score ranges for a benchmark: about `range_rows` rows each, at most MAX_RANGES."""
    return min(MAX_RANGES, max(1, -(-rows // max(range_rows, 1))))


def _passes(
    client: Client,
    scored: list[Future[Any]],
    layout: Layout,
    fan_in: int,
    run: str,
    ranges: int,
    deadline: _Deadline,
    problem: int | None = None,
) -> Future[Any]:
    """Both passes over scored partitions (of one one-vs-rest `problem` of multiclass rows,
    if given), up to the merged statistics. The count tables are cut into `ranges` score
    ranges (ranges.py) and merged, prepared and looked up range by range, at most IN_FLIGHT
    ranges at once (the coordinator waits for the older range's lookups before it submits the
    next range): no task holds a whole merged table, and no worker every range's."""
    if problem is not None:
        run = f"{run}-class{problem}"
    firsts = [
        client.submit(tasks.first_part, s, layout, problem, key=f"first-{run}-{i}")
        for i, s in enumerate(scored)
    ]
    rest = tree_reduce(
        client,
        [
            client.submit(tasks.without_tables, f, key=f"rest-{run}-{i}")
            for i, f in enumerate(firsts)
        ],
        tasks.merge_first_parts,
        name=f"rest-{run}",
        fan_in=fan_in,
    )
    cuts = client.submit(tasks.cuts_part, rest, ranges, key=f"cuts-{run}")
    sliced = [
        client.submit(tasks.split_part, f, cuts, key=f"slices-{run}-{i}")
        for i, f in enumerate(firsts)
    ]
    counts = [
        client.submit(tasks.counts_part, s, key=f"counts-{run}-{i}") for i, s in enumerate(sliced)
    ]
    offsets = client.submit(tasks.offsets_part, *counts, key=f"offsets-{run}")
    by_range = [
        client.submit(tasks.rows_by_range, s, cuts, problem, key=f"by-range-{run}-{i}")
        for i, s in enumerate(scored)
    ]
    # Every (range, partition) piece a future of its own, so each goes once it has been used.
    slices = [
        [client.submit(getitem, s, r, key=f"slice-{run}-{r}-{i}") for i, s in enumerate(sliced)]
        for r in range(ranges)
    ]
    rows = [
        [
            client.submit(getitem, b, r, key=f"in-range-{run}-{r}-{i}")
            for i, b in enumerate(by_range)
        ]
        for r in range(ranges)
    ]
    del sliced, by_range
    shares: list[Future[Any]] = []
    in_flight: list[list[Future[Any]]] = []
    lookups: list[list[Future[Any]]] = [[] for _ in scored]
    for r in range(ranges):
        if len(in_flight) == IN_FLIGHT:  # bounds the ranges whose tables exist at once
            deadline.wait(in_flight.pop(0))
        merged = tree_reduce(
            client, slices[r], merge_slices, name=f"tables-{run}-{r}", fan_in=fan_in
        )
        shares.append(client.submit(tasks.auc_part, merged, offsets, r, key=f"auc-{run}-{r}"))
        prepared = client.submit(
            tasks.prepare_part, merged, offsets, cuts, layout, r, key=f"prepared-{run}-{r}"
        )
        found = [
            client.submit(look_up, part, prepared, layout, key=f"lookup-{run}-{r}-{i}")
            for i, part in enumerate(rows[r])
        ]
        slices[r], rows[r] = [], []
        for i, lookup in enumerate(found):
            lookups[i].append(lookup)
        in_flight.append(found)
    auc = client.submit(tasks.join_auc, *shares, key=f"auc-{run}")
    summary = client.submit(_summarise, rest, auc, key=f"summary-{run}")
    seconds = [
        client.submit(tasks.second_part, s, lookups[i], layout, problem, key=f"second-{run}-{i}")
        for i, s in enumerate(scored)
    ]
    second = tree_reduce(
        client, seconds, tasks.merge_second_parts, name=f"second-{run}", fan_in=fan_in
    )
    return client.submit(_finish, summary, second, layout, key=f"finish-{run}")


@dataclass(frozen=True)
class Summed:
    """Regression or multiclass: the merged sums, and (multiclass one-vs-rest ROC AUC) each
    class's binary statistics."""

    sums: tasks.SumsPart
    problems: tuple[Merged, ...] = ()


@dataclass(frozen=True)
class _Deadline:
    """The policy's limit on the whole evaluation, for the coordinator's every wait."""

    timeout_s: float | None
    start: float = field(default_factory=time.monotonic)

    def _left(self) -> float | None:
        if self.timeout_s is None:
            return None
        return max(0.0, self.timeout_s - (time.monotonic() - self.start))

    def _error(self) -> DistributedError:
        return DistributedError(
            f"the evaluation on the Dask cluster did not finish within {self.timeout_s:g} s "
            "(limits.timeout_seconds); are there workers?"
        )

    def wait(self, futures: list[Future[Any]]) -> None:
        """Until the futures are done, or failed: `exception` waits without raising a task's
        error, which surfaces in the result."""
        try:
            for future in futures:
                future.exception(timeout=self._left())  # type: ignore[no-untyped-call]
        except TimeoutError:
            raise self._error() from None

    def result(self, done: Future[Any]) -> Any:
        try:
            return done.result(timeout=self._left())
        except TimeoutError:
            raise self._error() from None


def evaluate_partitions(
    client: Client,
    specs: Sequence[tasks.PartitionSpec],
    job: tasks.Job,
    layout: Layout,
    *,
    fan_in: int = FAN_IN,
    range_rows: int = RANGE_ROWS,
    timeout_s: float | None = None,
) -> Merged:
    """Score every partition and run both passes; raises what a task raised, or
    DistributedError when the result is not there within `timeout_s`."""
    deadline = _Deadline(timeout_s)
    result: Merged = deadline.result(
        _graph(client, specs, job, layout, fan_in, range_rows, deadline)
    )
    return result


def evaluate_summed(
    client: Client,
    specs: Sequence[tasks.PartitionSpec],
    job: tasks.Job,
    layout: Layout,
    summers: dict[str, tasks.Summer],
    *,
    one_vs_rest: Layout | None = None,
    fan_in: int = FAN_IN,
    range_rows: int = RANGE_ROWS,
    timeout_s: float | None = None,
) -> Summed:
    """Score each partition once and merge its `summers`' sums (one pass: no tables, no
    ranks); with `one_vs_rest`, also both binary passes per class on the same scored
    partitions."""
    deadline = _Deadline(timeout_s)
    run = uuid.uuid4().hex[:12]
    scored = _scored(client, specs, job, run)
    parts = [
        client.submit(tasks.sums_part, s, layout, summers, key=f"sums-{run}-{i}")
        for i, s in enumerate(scored)
    ]
    sums = tree_reduce(client, parts, tasks.merge_sums_parts, name=f"sums-{run}", fan_in=fan_in)
    ranges = ranges_for(sum(spec.rows for spec in specs), range_rows)
    problems = (
        [
            _passes(client, scored, one_vs_rest, fan_in, run, ranges, deadline, problem)
            for problem in range(len(job.classes))
        ]
        if one_vs_rest is not None
        else []
    )
    done = client.submit(
        lambda sums, *problems: Summed(sums, tuple(problems)),
        sums,
        *problems,
        key=f"summed-{run}",
    )
    result: Summed = deadline.result(done)
    return result
