"""Benchmark: one evaluation on a Dask LocalCluster (2 workers) next to the local engine.

N rows for the fixture churn models (17 features, 3 segment columns, global row ids) are
generated partition by partition and written as a partitioned benchmark (part files and a
manifest) and, for the local engine, appended to one Parquet file; no process holds them all
while generating. Both engines then run `run_evaluation` end to end (inference included) with
the fixture policy (ROC AUC with DeLong, log loss with 1,000 bootstrap resamples, calibration,
segments; latency off). The local engine runs in a child process; peak memory is sampled
(RSS of each process tree, every 0.1 s). Prints times, peaks and ratios. Usage:

python bench/bench_dask_evaluate.py [--rows 1000000] [--partition-rows 500000]
    [--range-rows 2000000 [1000000 ...]] [--one-range-too] [--worker-memory 2GB] [--skip-local]

`--one-range-too` runs the dask engine a second time, on the same data, with the merged count
tables whole (statistics.range_rows above the row count: one score range), as every task of
pass 2 held them before score ranges.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.distributed.manifest import write_partitioned  # noqa: E402
from evaluators.evaluate import run_evaluation  # noqa: E402
from evaluators.policy import parse_policy  # noqa: E402

REGISTRY = ROOT / "fixtures/registry"
CANDIDATE = REGISTRY / "candidate_better/models/churn"
PRODUCTION = REGISTRY / "production/models/churn"
SEGMENTS = {
    "entity_type": ["enterprise", "public_sector", "smb", "startup"],
    "industry": ["finance", "health", "media", "retail", "tech", "transport"],
    "region": ["apac", "emea", "latam", "na"],
}


def features() -> list[str]:
    config = yaml.safe_load((CANDIDATE / "config.yaml").read_text())
    return list(config["features"])


def partition(start: int, n: int, names: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng([16, start])
    x = rng.standard_normal((n, len(names)))
    logit = x[:, 0] * 0.8 - x[:, 3] * 0.6 + x[:, 7] * 0.4 - 1.5
    frame = pd.DataFrame(x, columns=names)
    frame["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame["customer_id"] = pd.array([f"c{i}" for i in range(start, start + n)], dtype="string")
    for column, values in SEGMENTS.items():
        frame[column] = pd.array(np.asarray(values)[rng.integers(0, len(values), n)], "string")
    frame["row_id"] = np.arange(start, start + n, dtype=np.int64)
    return frame


def write(rows: int, per_part: int, out: Path, *, whole_too: bool = True) -> tuple[str, str]:
    """Partitioned benchmark and (`whole_too`) one whole file, written partition by partition;
    without the whole file its sha256 is ""."""
    names = features()
    whole = out / "whole.parquet"
    writer: pq.ParquetWriter | None = None

    def frames() -> Iterator[pd.DataFrame]:
        nonlocal writer
        for start in range(0, rows, per_part):
            frame = partition(start, min(per_part, rows - start), names)
            if whole_too:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(whole, table.schema)
                writer.write_table(table)
            yield frame

    sha = write_partitioned(
        frames(), out / "parts", row_id_column="row_id", segment_columns=list(SEGMENTS)
    )
    if writer is None:
        return sha, ""
    writer.close()
    digest = hashlib.sha256()
    with whole.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return sha, digest.hexdigest()


def policy_text(uri: Path, sha: str, engine: str, range_rows: int | None = None) -> str:
    data = yaml.safe_load((REGISTRY / "shipyard.yml").read_text())
    data["latency"]["enabled"] = False
    data["benchmark"].update(uri=str(uri), sha256=sha)
    data["statistics"]["engine"] = engine
    if range_rows is not None:
        data["statistics"]["range_rows"] = range_rows
    data["limits"]["memory_mb"] = 16384
    data["limits"]["timeout_seconds"] = 3600  # 100M rows take longer than the default 600 s
    return yaml.safe_dump(data)


class Peaks:
    """Peak RSS of process trees, sampled in a thread."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.own: dict[str, float] = dict.fromkeys(pids, 0.0)
        self.tree: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for name, pid in self.pids.items():
                try:
                    proc = psutil.Process(pid)
                    own = proc.memory_info().rss
                    kids = sum(c.memory_info().rss for c in proc.children(recursive=True))
                except psutil.Error:
                    continue
                self.own[name] = max(self.own[name], own / 2**20)
                self.tree[name] = max(self.tree[name], (own + kids) / 2**20)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def local_child(policy_path: str) -> None:
    """Child process: the local engine, end to end; prints its time and result as JSON."""
    policy = parse_policy(Path(policy_path).read_text())
    t0 = time.perf_counter()
    report = run_evaluation(candidate_dir=CANDIDATE, baseline_dir=PRODUCTION, policy=policy)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "report": report.model_dump(mode="json")}))


def overall(report: dict[str, Any]) -> dict[str, Any]:
    return {m["metric"]: m for m in report["overall"]}


def on_dask(
    out: Path, part_sha: str, range_rows: int, memory_limit: str
) -> tuple[float, Peaks, Any]:
    """One evaluation on a new LocalCluster (so each run's peaks are its own)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=memory_limit,
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        policy = parse_policy(policy_text(out / "parts", part_sha, "dask", range_rows))
        with Peaks({f"worker {i}": pid for i, pid in enumerate(pids.values())}) as peaks:
            t0 = time.perf_counter()
            report = run_evaluation(
                candidate_dir=CANDIDATE,
                baseline_dir=PRODUCTION,
                policy=policy,
                dask_scheduler=cluster.scheduler_address,
            )
            return time.perf_counter() - t0, peaks, report


def run_local(out: Path, whole_sha: str) -> dict[str, Any]:
    """The local engine on the whole file, in a child process: its time, report and peak."""
    local_policy = out / "local.yml"
    local_policy.write_text(policy_text(out / "whole.parquet", whole_sha, "local"))
    child = subprocess.Popen(
        [sys.executable, __file__, "--local-child", str(local_policy)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    with Peaks({"local": child.pid}) as local_peaks:
        stdout, _ = child.communicate()
    local = json.loads(stdout)
    assert local["report"]["status"] == "completed", local["report"].get("error")
    local["peak_mb"] = local_peaks.tree["local"]
    return dict(local)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partition-rows", type=int, default=500_000)
    parser.add_argument(
        "--range-rows", type=int, nargs="+", default=[2_000_000], help="statistics.range_rows"
    )
    parser.add_argument(
        "--one-range-too",
        action="store_true",
        help="also run the dask engine with the tables whole (one range), for the ratio",
    )
    parser.add_argument(
        "--worker-memory",
        default="0",
        help="each Dask worker's memory limit (e.g. 2GB; Dask spills results to disk above 60%%"
        " of it); 0: none",
    )
    parser.add_argument(
        "--skip-local",
        action="store_true",
        help="no whole file and no local engine (100M rows do not fit one process)",
    )
    parser.add_argument("--local-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.local_child:
        local_child(args.local_child)
        return

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        part_sha, whole_sha = write(
            args.rows, args.partition_rows, out, whole_too=not args.skip_local
        )
        parts = len(list((out / "parts").glob("*.parquet")))
        print(
            f"{args.rows:,} rows in {parts} partitions written in {time.perf_counter() - t0:.1f} s"
        )

        local = None if args.skip_local else run_local(out, whole_sha)
        runs = {f"range_rows {rows:,}": rows for rows in args.range_rows}
        if args.one_range_too:  # the tables whole, as before score ranges: the same data
            runs["one range"] = 10**9
        results = {
            name: on_dask(out, part_sha, rows, args.worker_memory) for name, rows in runs.items()
        }
        if local is not None:
            print(
                f"local engine: {local['seconds']:.1f} s, peak {local['peak_mb']:,.0f} MB"
                " (process and its model worker)"
            )
        for name, (dask_s, peaks, report) in results.items():
            assert report.status.value == "completed", report.error
            print(f"dask engine, {name}: {dask_s:.1f} s (2 workers, 1 thread each)")
            for worker in peaks.pids:
                print(
                    f"  {worker}: peak {peaks.own[worker]:,.0f} MB, with its model process "
                    f"{peaks.tree[worker]:,.0f} MB"
                )
            if local is not None:
                print(
                    f"  ratio dask / local time: {dask_s / local['seconds']:.2f}; "
                    f"largest worker tree / local peak: "
                    f"{max(peaks.tree.values()) / local['peak_mb']:.2f}"
                )
        if "one range" in results:
            one_s, one_peaks, _ = results["one range"]
            for name, (a_s, a_peaks, _) in results.items():
                if name != "one range":
                    print(
                        f"{name} / one range: time {a_s / one_s:.2f}, largest worker tree "
                        f"{max(a_peaks.tree.values()) / max(one_peaks.tree.values()):.2f}"
                    )
        report = next(iter(results.values()))[2]
        found = overall(report.model_dump(mode="json"))
        print(f"durations (dask): {report.durations_s}")
        if local is None:
            auc = found["roc_auc"]
            print(
                f"ROC AUC candidate {auc['candidate']:.12f}, SE of the difference {auc['se']:.3e}"
            )
            return
        want = overall(local["report"])
        auc, loss = found["roc_auc"], want["roc_auc"]
        print(
            f"ROC AUC candidate: |dask - local| = {abs(auc['candidate'] - loss['candidate']):.1e}; "
            f"DeLong SE relative difference {abs(auc['se'] / loss['se'] - 1):.1e}"
        )


if __name__ == "__main__":
    main()
