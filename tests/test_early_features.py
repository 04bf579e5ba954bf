"""`shipyard evaluate` reads the features with pyarrow before pandas: the same matrices the
evaluation computes, or nothing when the benchmark is not simply a pinned local Parquet file."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evaluators.artifacts.early_features import early_features
from evaluators.artifacts.inference import feature_matrix
from evaluators.candidate import parse_model_config
from evaluators.policy import BenchmarkPolicy

ROOT = Path(__file__).resolve().parent.parent
BENCHMARK = ROOT / "fixtures" / "benchmark" / "churn_benchmark.parquet"
CONFIG = ROOT / "fixtures" / "registry" / "candidate_better" / "models" / "churn" / "config.yaml"


def _pinned(path: Path, uri: str | None = None) -> BenchmarkPolicy:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return BenchmarkPolicy(uri=uri or path.name, sha256=sha, label_column="churned")


def test_the_fixture_features_equal_what_the_evaluation_computes() -> None:
    features = parse_model_config(CONFIG.read_text()).features
    found = early_features(
        _pinned(BENCHMARK), base_dir=BENCHMARK.parent, features={"candidate": features}
    )
    assert found is not None
    expected = feature_matrix(pd.read_parquet(BENCHMARK), features)
    assert found["candidate"].dtype == np.float32
    np.testing.assert_array_equal(found["candidate"], expected)


def test_nulls_are_nan_and_integers_are_cast_as_pandas_does(tmp_path: Path) -> None:
    table = pa.table(
        {
            "count": pa.chunked_array([pa.array([1, None, 3]), pa.array([7, 2**40])]),
            "share": pa.array([0.5, None, 1.5, None, 2.0]),
            "label": pa.array([0, 1, 0, 1, 1]),
        }
    )
    path = tmp_path / "bench.parquet"
    pq.write_table(table, path, row_group_size=2)
    found = early_features(
        _pinned(path), base_dir=tmp_path, features={"candidate": ["share", "count"]}
    )
    assert found is not None
    expected = feature_matrix(pd.read_parquet(path), ["share", "count"])
    np.testing.assert_array_equal(found["candidate"], expected)
    assert np.isnan(found["candidate"][1]).all()


def test_anything_else_is_left_to_the_evaluation(tmp_path: Path) -> None:
    path = tmp_path / "bench.parquet"
    pq.write_table(pa.table({"x": ["a", "b"], "y": [1.0, 2.0]}), path)
    csv = tmp_path / "bench.csv"
    csv.write_text("x,y\n1,2\n")
    wrong_pin = BenchmarkPolicy(uri=path.name, sha256="0" * 64, label_column="y")
    cases = [
        (wrong_pin, ["y"]),  # not the pinned bytes
        (_pinned(path), ["x"]),  # not numeric
        (_pinned(path), ["missing"]),  # no such column
        (_pinned(csv), ["x"]),  # not Parquet
        (_pinned(path, uri="https://example.invalid/bench.parquet"), ["y"]),  # not local
        (BenchmarkPolicy(uri="gone.parquet", sha256="0" * 64), ["y"]),  # not there
    ]
    for policy, features in cases:
        assert early_features(policy, base_dir=tmp_path, features={"c": features}) is None
    # A benchmark too large to be worth reading twice for the head start.
    size = path.stat().st_size
    assert early_features(_pinned(path), base_dir=tmp_path, features={"c": ["y"]}) is not None
    too_large = early_features(
        _pinned(path), base_dir=tmp_path, features={"c": ["y"]}, max_bytes=size - 1
    )
    assert too_large is None


def test_reading_the_features_does_not_import_pandas() -> None:
    # The point of reading early: pandas (0.3 s) is imported afterwards, while the worker scores.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from evaluators.artifacts.early_features import early_features\n"
        "from evaluators.policy import BenchmarkPolicy\n"
        f"p = Path({str(BENCHMARK)!r})\n"
        f"policy = BenchmarkPolicy(uri=p.name, sha256={_pinned(BENCHMARK).sha256!r})\n"
        "found = early_features(policy, base_dir=p.parent, features={'c': ['nps_score']})\n"
        "assert found is not None and found['c'].shape == (100000, 1)\n"
        "print('pandas' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    # Exits cleanly too: a read through a Python file object once aborted here at exit (SIGABRT,
    # apache/arrow#33975), so a failure shows what the process printed.
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "False"
