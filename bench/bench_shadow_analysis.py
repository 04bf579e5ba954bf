"""Shadow analysis of N logged request pairs (default 1M): Shipyard's pairing + flips + drift
(evaluators.statistics.shadow_analysis) against the obvious pandas approach
(drop_duplicates + merge + json.loads of every row + groupby), in the same run.

    .venv/bin/python bench/bench_shadow_analysis.py [pairs]

The logs look like the gateway's: request ids, UTC times, the features as JSON text (the
benchmark's rows, floats as float32 like the gateway logs them, plus the segment columns),
scores, errors. 0.5% of production rows are not mirrored, 0.1% of shadow rows are logged twice.
Generating the logs is not timed; the analysis is (target: ≤ 2 s for 1M pairs).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.policy import parse_policy  # noqa: E402
from evaluators.statistics.drift import build_profile  # noqa: E402
from evaluators.statistics.shadow_analysis import analyse_shadow  # noqa: E402
from evaluators.statistics.shadow_evidence import (  # noqa: E402
    LatencyQuantiles,
    LatencyReading,
)

BENCHMARK = ROOT / "fixtures/benchmark/churn_benchmark.parquet"
SEGMENTS = ["entity_type", "industry", "region"]


def _features_json(rows: pd.DataFrame) -> pa.Array:
    """JSON objects built column-wise in Arrow (json.dumps over 1M rows takes minutes here)."""
    pieces: list[Any] = []
    for i, column in enumerate(rows.columns):
        values = pa.array(rows[column])
        if pa.types.is_large_string(values.type):
            values = values.cast(pa.string())
        if pa.types.is_floating(values.type):
            text = pc.cast(pc.cast(values, pa.float32()).cast(pa.float64()), pa.string())
        else:
            text = pc.binary_join_element_wise('"', values, '"', "")
        pieces += [("{" if i == 0 else ", ") + json.dumps(column) + ": ", text]
    pieces.append("}")
    return pc.binary_join_element_wise(*pieces, "")


def make_logs(pairs: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    bench = pd.read_parquet(BENCHMARK).drop(columns=["churned", "customer_id"])
    rows = bench.sample(pairs, replace=True, random_state=seed).reset_index(drop=True)
    features = _features_json(rows)
    ids = pd.Series([f"{i:016x}" for i in rng.permutation(pairs)], dtype="string[pyarrow]")
    start = np.datetime64("2026-12-01T00:00:00", "us")
    times = start + np.sort(rng.integers(0, 86_400_000_000, pairs)).astype("timedelta64[us]")
    score = 1 / (1 + np.exp(-rng.normal(0, 2, pairs)))
    production = pd.DataFrame(
        {
            "request_id": ids,
            "time": pd.to_datetime(times, utc=True),
            "features": pd.Series(features.to_pandas(), dtype="string[pyarrow]"),
            "score": score,
            "error": pd.Series([None] * pairs, dtype="string[pyarrow]"),
        }
    )
    mirrored = rng.random(pairs) >= 0.005
    shadow = production[mirrored].copy()
    shadow["score"] = np.clip(shadow["score"] + rng.normal(0, 0.02, len(shadow)), 0, 1)
    shadow["time"] = shadow["time"] + pd.Timedelta(milliseconds=3)
    doubled = shadow.sample(frac=0.001, random_state=seed)
    shadow = pd.concat([shadow, doubled], ignore_index=True)
    return production, shadow, bench


def pandas_merge(
    production: pd.DataFrame, shadow: pd.DataFrame, profile_frame: pd.DataFrame
) -> dict[str, Any]:
    """The obvious approach: dedupe, merge, parse every row's JSON, group by."""
    prod = production.sort_values("time").drop_duplicates("request_id")
    shad = shadow.sort_values("time").drop_duplicates("request_id")
    merged = prod.merge(shad, on="request_id", suffixes=("_p", "_s"))
    parsed = pd.json_normalize([json.loads(text) for text in prod["features"]])
    merged_features = pd.json_normalize([json.loads(text) for text in merged["features_p"]])
    flipped = (merged["score_p"] >= 0.5) != (merged["score_s"] >= 0.5)
    per_segment = {c: flipped.groupby(merged_features[c].to_numpy()).mean() for c in SEGMENTS}
    spearman = merged[["score_p", "score_s"]].corr(method="spearman").iloc[0, 1]
    psi = {}
    for column in profile_frame.columns:
        if column in SEGMENTS:
            expected = profile_frame[column].value_counts(normalize=True)
            actual = parsed[column].value_counts(normalize=True)
        else:
            edges = np.unique(profile_frame[column].quantile(np.linspace(0, 1, 11)[1:-1]))
            bins = [-np.inf, *edges, np.inf]
            expected = pd.cut(profile_frame[column], bins, right=False).value_counts(normalize=True)
            actual = pd.cut(parsed[column], bins, right=False).value_counts(normalize=True)
        e, a = expected.align(actual, fill_value=0)
        e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
        psi[column] = float(((a - e) * np.log(a / e)).sum())
    return {
        "paired": len(merged),
        "flip_rate": float(flipped.mean()),
        "per_segment": per_segment,
        "spearman": float(spearman),
        "psi": psi,
    }


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    t0 = time.perf_counter()
    production, shadow, bench = make_logs(pairs)
    print(
        f"generated {len(production):,} production and {len(shadow):,} shadow rows "
        f"in {time.perf_counter() - t0:.1f} s (not timed below)"
    )
    policy = parse_policy(
        "benchmark: {uri: b.parquet, sha256: '"
        + "0" * 64
        + "', segment_columns: "
        + json.dumps(SEGMENTS)
        + "}\n"
    )
    profile = build_profile(bench, columns=list(bench.columns))
    latency = LatencyReading(
        shadow=LatencyQuantiles(2.0, 4.0, 6.0), production=LatencyQuantiles(2.0, 4.0, 6.0)
    )

    runs = []
    for _ in range(3):
        t, cpu = time.perf_counter(), time.process_time()
        evidence = analyse_shadow(
            production=production,
            shadow=shadow,
            policy=policy,
            profile=profile,
            elapsed=timedelta(hours=24),
            latency=latency,
        )
        runs.append((time.perf_counter() - t, time.process_time() - cpu))
    ours, ours_cpu = min(runs)
    print("shipyard runs (wall s, cpu s): " + ", ".join(f"({w:.2f}, {c:.2f})" for w, c in runs))
    overall = next(r for r in evidence.outputs.flips if r.column is None)
    print(
        f"shipyard analyse_shadow: best {ours:.2f} s wall ({ours_cpu:.2f} s cpu)  paired "
        f"{evidence.paired:,}, coverage {evidence.coverage:.4f}, flip rate {overall.rate:.4f}, "
        f"spearman "
        f"{evidence.outputs.spearman:.4f}, max PSI {max(d.psi for d in evidence.drift):.4f} "
        f"(drift on {evidence.drift[0].rows:,} sampled requests)"
    )

    t, cpu = time.perf_counter(), time.process_time()
    naive = pandas_merge(production, shadow, bench)
    theirs, theirs_cpu = time.perf_counter() - t, time.process_time() - cpu
    print(
        f"pandas merge + json.loads: {theirs:.2f} s wall ({theirs_cpu:.2f} s cpu)  paired "
        f"{naive['paired']:,}, flip rate {naive['flip_rate']:.4f}, "
        f"spearman {naive['spearman']:.4f}, "
        f"max PSI {max(naive['psi'].values()):.4f} (drift on every request)"
    )
    print(
        f"ratio: pandas / shipyard = {theirs / ours:.1f}x wall; target shipyard <= 2 s: "
        f"{'met' if ours <= 2 else 'NOT met'}; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
