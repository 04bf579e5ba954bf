"""Trust checks: claimed metrics against reproduced ones, and training/benchmark leakage."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from evaluators.candidate import ClaimedResults
from evaluators.report import ClaimCheck, LeakageCheck, MetricComparison

# Names authors commonly write in eval_results.json for the project's metric names.
_ALIASES = {
    "auc": "roc_auc",
    "rocauc": "roc_auc",
    "auroc": "roc_auc",
    "prauc": "pr_auc",
    "auprc": "pr_auc",
    "average_precision": "pr_auc",
    "ap": "pr_auc",
    "f1_score": "f1",
    "logloss": "log_loss",
    "cross_entropy": "log_loss",
    "brier_score": "brier",
    "acc": "accuracy",
    "f1_macro": "macro_f1",
    "macro_f1_score": "macro_f1",
    "roc_auc_ovr": "ovr_roc_auc",
    "auc_ovr": "ovr_roc_auc",
    "r_squared": "r2",
    "r2_score": "r2",
}

MAX_EXAMPLES = 5
# `snapshot:2024-06-01`, `s3://bucket/train.parquet`, `dvc:abc123`: references to whole data
# sets, which cannot be compared row by row with benchmark ids.
_SNAPSHOT_REF = re.compile(r"^[A-Za-z][A-Za-z0-9+._-]*:")


def canonical_metric_name(name: str) -> str:
    """`ROC-AUC`, `auc` and `roc_auc` all mean roc_auc."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return _ALIASES.get(key, _ALIASES.get(key.replace("_", ""), key))


def check_claims(
    *,
    claimed: ClaimedResults,
    overall: list[MetricComparison],
    tolerance: float,
    also_measured: dict[str, float] | None = None,
) -> list[ClaimCheck]:
    """Compare each claimed metric with the candidate's reproduced value on the benchmark.

    `also_measured` holds values measured elsewhere in the report (the calibration section's
    Brier score), so a claim is never called unmeasured while the report shows its value.
    `difference` is reproduced - claimed: negative means the claim was optimistic.
    """
    reproduced = {**(also_measured or {})}
    reproduced.update({comparison.metric: comparison.candidate for comparison in overall})
    checks = []
    for name, value in claimed.metrics.items():
        metric = canonical_metric_name(name)
        actual = reproduced.get(metric)
        note = "" if metric == name else f"claimed as {name!r}"
        if actual is None:
            checks.append(
                ClaimCheck(
                    metric=metric,
                    claimed=value,
                    reproduced=None,
                    difference=None,
                    flagged=False,
                    note=_join(note, "not reproduced: the policy does not track this metric"),
                )
            )
            continue
        difference = actual - value
        # A non-finite claim or result cannot be "within tolerance".
        flagged = not math.isfinite(difference) or abs(difference) > tolerance
        if flagged and abs(value / 100 - actual) <= tolerance:
            note = _join(note, "the claim looks like a percentage; report it as a fraction")
        checks.append(
            ClaimCheck(
                metric=metric,
                claimed=value,
                reproduced=actual,
                difference=difference,
                flagged=flagged,
                note=note,
            )
        )
    return checks


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _benchmark_id_strings(ids: pd.Series | list[str]) -> pd.Index:
    series = ids if isinstance(ids, pd.Series) else pd.Series(ids)
    series = series.dropna()
    # A float column of whole numbers (ints with a missing value) would print as "123.0".
    if pd.api.types.is_float_dtype(series.dtype) and bool(
        np.all(np.mod(series.to_numpy(), 1) == 0)
    ):
        series = series.astype("int64")
    return pd.Index(series.astype(str).unique())


def check_leakage(
    *, manifest_entries: list[str], benchmark_ids: pd.Series | list[str], id_column: str | None
) -> LeakageCheck:
    """Training ids from data_manifest.txt that are also benchmark rows make the check fail."""
    entries = list(dict.fromkeys(entry.strip() for entry in manifest_entries if entry.strip()))
    if id_column is None:
        return LeakageCheck(
            id_column=None,
            manifest_ids=len(entries),
            overlapping=0,
            passed=True,
            note="Not checked: the policy names no benchmark.id_column.",
        )
    manifest = pd.Index(entries, dtype=object)
    # A hash join on the unique benchmark ids: about 0.6 s for 1M integer ids on one core.
    overlap_mask = manifest.isin(_benchmark_id_strings(benchmark_ids))
    overlapping = [entry for entry, hit in zip(entries, overlap_mask, strict=True) if hit]
    # An entry that matches a benchmark id is a leak even if it looks like a reference.
    snapshots = [
        entry
        for entry, hit in zip(entries, overlap_mask, strict=True)
        if not hit and _SNAPSHOT_REF.match(entry)
    ]
    row_ids = len(entries) - len(snapshots)
    notes = []
    if snapshots:
        noun = "reference" if len(snapshots) == 1 else "references"
        notes.append(
            f"{len(snapshots):,} snapshot {noun} (e.g. {snapshots[0]}) cannot be checked row by "
            "row; make sure those snapshots exclude the benchmark."
        )
    if row_ids == 0:
        notes.append("The manifest lists no row ids, so no row-level overlap could be found.")
    return LeakageCheck(
        id_column=id_column,
        manifest_ids=row_ids,
        overlapping=len(overlapping),
        examples=overlapping[:MAX_EXAMPLES],
        passed=not overlapping,
        note=" ".join(notes),
    )
