"""Mergeable statistics: a partitioned benchmark gives the answers of the whole one."""

from __future__ import annotations

import itertools
import math
from functools import reduce
from operator import add
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score, roc_auc_score

from evaluators.candidate import Task
from evaluators.metrics.ranking import placements, tie_runs
from evaluators.metrics.registry import get_metric
from evaluators.statistics.calibration import calibration_stats
from evaluators.statistics.compare_engine import Estimates, PairedData, estimate
from evaluators.statistics.intervals import PoissonBootstrap, make_poisson_bootstrap
from evaluators.statistics.mergeable.bootstrap import HashedPoisson, bootstrap_sums
from evaluators.statistics.mergeable.counts import (
    CountTable,
    count_table,
    merge_tables,
    rank_counts,
)
from evaluators.statistics.mergeable.evaluation import (
    OVERALL,
    FirstSummary,
    Layout,
    Rows,
    by_range,
    finish,
    first_pass,
    look_up,
    prepare,
    prepare_range,
    second_of,
    second_pass,
)
from evaluators.statistics.mergeable.exact import (
    grouped_wide_fixed_sum,
    limb_totals,
    wide_to_float,
)
from evaluators.statistics.mergeable.ranges import (
    cuts_of,
    join_rank_counts,
    merge_slices,
    range_of,
    range_offsets,
    range_rank_counts,
    slice_counts,
    split_tables,
)
from evaluators.statistics.mergeable.regression import RegressionSums, regression_sums
from evaluators.statistics.mergeable.sums import calibration_bins, loss_sums, loss_terms

AnyArray = npt.NDArray[Any]


def simulate(n: int, seed: int, *, k: int = 4) -> Rows:
    """Two correlated probability models; the baseline rounded to 3 decimals (many ties)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    z1 = rng.standard_normal(n)
    z2 = 0.8 * z1 + 0.6 * rng.standard_normal(n)
    cand = 1 / (1 + np.exp(-(z1 + 1.2 * y - 1)))
    base = np.round(1 / (1 + np.exp(-(z2 + 1.0 * y - 1))), 3)
    return Rows(
        row_id=np.arange(n, dtype=np.int64) * 7 + 1_000_003,
        label=y,
        candidate=cand,
        baseline=base,
        codes={"region": rng.integers(0, k, n), "tier": rng.integers(0, 3, n)},
    )


def split(rows: Rows, parts: int, seed: int) -> list[Rows]:
    """Random boundaries, then the partitions in shuffled order."""
    rng = np.random.default_rng(seed)
    n = rows.label.shape[0]
    cuts = np.sort(rng.choice(np.arange(1, n), size=parts - 1, replace=False))
    bounds = [0, *cuts.tolist(), n]
    out = [
        Rows(
            row_id=rows.row_id[a:b],
            label=rows.label[a:b],
            candidate=rows.candidate[a:b],
            baseline=rows.baseline[a:b],
            codes={name: codes[a:b] for name, codes in rows.codes.items()},
        )
        for a, b in itertools.pairwise(bounds)
    ]
    return [out[i] for i in rng.permutation(parts)]


def evaluate(parts: list[Rows], layout: Layout) -> Any:
    first = reduce(lambda a, b: a + b, [first_pass(p, layout) for p in parts])
    prepared = prepare(first, layout)
    second = reduce(lambda a, b: a + b, [second_pass(p, prepared, layout) for p in parts])
    return finish(first, second, layout)


def local_estimate(
    data: PairedData, codes: AnyArray | None, k: int, name: str, boot: PoissonBootstrap
) -> Estimates:
    """One metric on the local engine, its bootstrap SE where it has no DeLong."""
    metric = get_metric(name, task=Task.BINARY)
    return estimate(
        data=data, codes=codes, n_segments=k, metrics=[metric], delong=set(), bootstrap=boot
    )[name]


# --- exact AUC from count tables -----------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "label", "score"),
    [
        ("distinct scores", [0, 1, 0, 1, 1, 0, 0], [0.1, 0.9, 0.3, 0.2, 0.7, 0.4, 0.8]),
        ("ties across classes", [0, 1, 0, 1, 1, 0], [0.5, 0.5, 0.2, 0.9, 0.5, 0.9]),
        ("every score tied", [0, 1, 1, 0, 1], [0.3] * 5),
        ("negative zero equals zero", [0, 1, 0, 1], [-0.0, 0.0, 0.0, -0.0]),
    ],
)
def test_auc_from_merged_tables_equals_scikit_learn(
    case: str, label: list[int], score: list[float]
) -> None:
    y, s = np.array(label), np.array(score)
    tables = [count_table(score=s[i : i + 2], label=y[i : i + 2]) for i in range(0, len(y), 2)]
    counts = rank_counts(merge_tables(tables))
    assert counts.auc_of(0) == pytest.approx(roc_auc_score(y, s), abs=1e-12), case


def test_auc_per_segment_on_many_tied_rows_equals_scikit_learn() -> None:
    rows = simulate(60_000, seed=1)
    codes = rows.codes["region"]
    parts = split(rows, 7, seed=2)
    merged = merge_tables(
        count_table(score=p.baseline, label=p.label, codes=p.codes["region"], n_segments=4)
        for p in parts
    )
    auc = rank_counts(merged).auc
    for s in range(4):
        mask = codes == s
        assert abs(auc[s] - roc_auc_score(rows.label[mask], rows.baseline[mask])) < 1e-9


def test_a_segment_missing_a_class_has_an_undefined_auc_not_a_number() -> None:
    label = np.array([1, 1, 0, 1, 0])
    codes = np.array([0, 0, 1, 1, 2])  # segment 0: positives only; 2: one negative
    counts = rank_counts(
        count_table(
            score=np.array([0.2, 0.4, 0.3, 0.9, 0.1]), label=label, codes=codes, n_segments=4
        )
    )
    assert counts.auc_of(0) is None and counts.auc_of(2) is None and counts.auc_of(3) is None
    assert counts.auc_of(1) == 1.0
    assert counts.defined.tolist() == [False, True, False, False]
    assert counts.positives.tolist() == [2, 1, 0, 0] and counts.negatives.tolist() == [0, 1, 1, 0]


def test_tables_refuse_bad_rows() -> None:
    with pytest.raises(ValueError, match="NaN"):
        count_table(score=np.array([0.1, np.nan]), label=np.array([0, 1]))
    with pytest.raises(ValueError, match="0 or 1"):
        count_table(score=np.array([0.1, 0.2]), label=np.array([0, 2]))
    with pytest.raises(ValueError, match=r"0\.\.1"):
        count_table(score=np.array([0.1]), label=np.array([0]), codes=np.array([2]), n_segments=2)


@pytest.mark.parametrize("big", [127, 2**15 - 1, 2**31 - 1])
def test_counts_past_their_type_stay_exact_when_tables_merge(big: int) -> None:
    """Tables keep label counts in the smallest type that holds them (memory on the workers);
    a merge whose sums do not fit widens them instead of wrapping around."""
    table = CountTable(
        segment=np.zeros(2, np.int8),
        score=np.array([0.25, 0.75]),
        pos=np.array([0, 1], np.int32),
        neg=np.array([big, 0], np.int32),
        n_segments=1,
    )
    merged = merge_tables([table, table, table])
    assert merged.neg.tolist() == [3 * big, 0] and merged.pos.tolist() == [0, 3]
    counts = rank_counts(merged)
    assert counts.negatives.tolist() == [3 * big] and counts.positives.tolist() == [3]
    assert counts.concordant2.tolist() == [2 * 3 * 3 * big]  # every pair ranked right
    assert counts.auc_of(0) == 1.0


def test_merging_tables_is_associative_and_commutative_to_the_bit() -> None:
    rows = simulate(9_000, seed=3)
    a, b, c = (
        count_table(score=p.baseline, label=p.label, codes=p.codes["tier"], n_segments=3)
        for p in split(rows, 3, seed=4)
    )
    for left, right in [((a + b) + c, a + (b + c)), (a + b + c, c + a + b)]:
        for field in ("segment", "score", "pos", "neg"):
            assert np.array_equal(getattr(left, field), getattr(right, field))


# --- paired DeLong from placements ----------------------------------------------------------


def reference_delong(y: AnyArray, cand: AnyArray, base: AnyArray) -> tuple[float, float, float]:
    """Per-model DeLong SEs and their covariance from the repository's own placements."""
    placed = []
    for score in (cand, base):
        order = np.argsort(score, kind="stable")
        runs = tie_runs(score_sorted=score[order], label_sorted=y[order])
        row = np.empty(y.shape[0])
        row[order] = placements(runs, label_sorted=y[order])
        placed.append(row)
    pos, neg = y == 1, y == 0
    cov_pos = np.cov(placed[0][pos], placed[1][pos]) / pos.sum()
    cov_neg = np.cov(placed[0][neg], placed[1][neg]) / neg.sum()
    total = cov_pos + cov_neg
    return float(np.sqrt(total[0, 0])), float(np.sqrt(total[1, 1])), float(total[0, 1])


def test_delong_from_partitions_equals_the_local_engine() -> None:
    rows = simulate(300_000, seed=5)
    layout = Layout(columns={"region": 4, "tier": 3})
    result = evaluate(split(rows, 7, seed=6), layout)
    metric = get_metric("roc_auc", task=Task.BINARY)
    data = PairedData(rows.label, rows.candidate, rows.baseline, Task.BINARY, 0.5)
    for column, k in layout.segments().items():
        codes = None if column == OVERALL else rows.codes[column]
        local = estimate(
            data=data,
            codes=codes,
            n_segments=k,
            metrics=[metric],
            delong={"roc_auc"},
            bootstrap=None,
        )["roc_auc"]
        found = result.columns[column]
        assert np.allclose(found.delong.se_delta, local.se, rtol=1e-12, atol=0)
        assert np.allclose(found.auc[0].auc, local.candidate, rtol=0, atol=1e-12)
        assert np.allclose(found.auc[1].auc, local.baseline, rtol=0, atol=1e-12)
        assert np.allclose(found.delong.auc_candidate, local.candidate, rtol=0, atol=1e-12)
    # Per-model SEs and the covariance, overall and in one segment.
    for column, s in ((OVERALL, 0), ("region", 2)):
        mask = np.ones_like(rows.label, bool) if column == OVERALL else rows.codes[column] == s
        se_c, se_b, cov = reference_delong(
            rows.label[mask], rows.candidate[mask], rows.baseline[mask]
        )
        found = result.columns[column].delong
        assert found.se_candidate[s] == pytest.approx(se_c, rel=1e-12)
        assert found.se_baseline[s] == pytest.approx(se_b, rel=1e-12)
        assert found.covariance[s] == pytest.approx(cov, rel=1e-12)


def test_delong_moments_do_not_depend_on_partitioning_to_the_bit() -> None:
    rows = simulate(20_000, seed=7)
    layout = Layout(columns={"region": 4})
    results = [evaluate(split(rows, parts, seed=parts), layout) for parts in (1, 3, 7)]
    for other in results[1:]:
        for column in layout.segments():
            a, b = results[0].columns[column].delong, other.columns[column].delong
            assert np.array_equal(a.se_delta, b.se_delta) and np.array_equal(
                a.covariance, b.covariance
            )


def test_delong_is_undefined_for_a_segment_with_one_row_of_a_class() -> None:
    rows = Rows(
        row_id=np.arange(7),
        label=np.array([1, 0, 0, 1, 0, 1, 0]),
        candidate=np.array([0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.4]),
        baseline=np.array([0.6, 0.4, 0.5, 0.7, 0.2, 0.1, 0.3]),
        codes={"g": np.array([0, 0, 0, 1, 1, 1, 1])},  # segment 0: one positive
    )
    result = evaluate([rows], Layout(columns={"g": 2})).columns["g"].delong
    assert result.defined.tolist() == [False, True]
    assert np.isnan(result.se_delta[0]) and np.isfinite(result.se_delta[1])
    assert result.auc_candidate[0] == 1.0  # the AUC itself exists


def test_pass_two_refuses_tables_of_other_rows() -> None:
    rows = simulate(1_000, seed=8)
    other = simulate(1_000, seed=9)
    layout = Layout()
    prepared = prepare(first_pass(rows, layout), layout)
    with pytest.raises(ValueError, match="missing from the merged table"):
        second_pass(other, prepared, layout)


# --- Brier, log loss, calibration -----------------------------------------------------------


def test_loss_sums_equal_the_local_engine() -> None:
    rows = simulate(50_000, seed=10)
    rows.candidate[:5] = [0.0, 1.0, 1e-18, 1 - 1e-17, 0.5]  # the clipping matters here
    parts = split(rows, 3, seed=11)
    merged = reduce(
        lambda a, b: a + b,
        [
            loss_sums(
                label=p.label,
                candidate=p.candidate,
                baseline=p.baseline,
                codes=p.codes["region"],
                n_segments=4,
            )
            for p in parts
        ],
    )
    data = PairedData(rows.label, rows.candidate, rows.baseline, Task.BINARY, 0.5)
    boot = make_poisson_bootstrap(n_rows=50_000, resamples=2, seed=0)
    for term, name in enumerate(("brier", "log_loss")):
        local = local_estimate(data, rows.codes["region"], 4, name, boot)
        found = merged.brier if term == 0 else merged.log_loss
        assert np.allclose(found[:, 0], local.candidate, rtol=1e-12, atol=0)
        assert np.allclose(found[:, 1], local.baseline, rtol=1e-12, atol=0)


def test_calibration_bins_equal_calibration_stats() -> None:
    rows = simulate(40_000, seed=12)
    parts = split(rows, 7, seed=13)
    merged = reduce(
        lambda a, b: a + b,
        [
            calibration_bins(label=p.label, candidate=p.candidate, baseline=p.baseline, bins=10)
            for p in parts
        ],
    )
    for model, scores in enumerate((rows.candidate, rows.baseline)):
        local = calibration_stats(y_true=rows.label, probability=scores, bins=10)
        assert merged.ece_equal_width[model] == pytest.approx(local.ece_equal_width, rel=1e-12)
        filled = np.flatnonzero(merged.count[model])
        assert [b.count for b in local.reliability] == merged.count[model][filled].tolist()
        for b, reliability in zip(filled, local.reliability, strict=True):
            count = merged.count[model][b]
            assert merged.predicted[model][b] / count == pytest.approx(
                reliability.mean_predicted, rel=1e-12
            )
            assert merged.positives[model][b] / count == pytest.approx(
                reliability.observed_rate, rel=1e-12
            )


def test_confusion_counts_give_the_local_engines_metrics_for_any_partitioning() -> None:
    rows = simulate(40_000, seed=17)
    design = HashedPoisson(seed=3, replicates=200, groups=256)
    layout = Layout(columns={"region": 4, "tier": 3}, bootstrap=design, threshold=0.4)
    results = {parts: evaluate(split(rows, parts, seed=18), layout) for parts in (1, 3, 7)}
    data = PairedData(rows.label, rows.candidate, rows.baseline, Task.BINARY, 0.4)
    boot = make_poisson_bootstrap(n_rows=40_000, resamples=2, seed=0)
    merged = results[1].columns["region"].confusion
    assert merged is not None and merged.cells is not None
    assert merged.cells.shape == (4, 256, 2, 4)
    for name in ("accuracy", "precision", "recall", "f1"):
        metric = get_metric(name, task=Task.BINARY)
        assert metric.finish is not None
        local = local_estimate(data, rows.codes["region"], 4, name, boot)
        # Integer counts, the metric's own finish: the local engine's values to the bit.
        assert np.array_equal(metric.finish(merged.totals(0)), local.candidate)
        assert np.array_equal(metric.finish(merged.totals(1)), local.baseline)
    weights = design.group_weights()
    for parts in (3, 7):
        for column in (OVERALL, "region", "tier"):
            whole = results[1].columns[column].confusion
            split_up = results[parts].columns[column].confusion
            assert whole is not None and split_up is not None
            assert np.array_equal(whole.cells, split_up.cells)
            for model in (0, 1):
                assert np.array_equal(
                    whole.replicates(model, weights), split_up.replicates(model, weights)
                )


def test_rank_resamples_match_the_local_engine_and_do_not_depend_on_partitioning() -> None:
    """Average precision from the merged tables, and the binned histograms behind the
    bootstrap SEs of AUC and AP: the local engine's point values, its SEs within Monte Carlo
    error, and the same replicates bit for bit with 1, 3 and 7 partitions."""
    rows = simulate(40_000, seed=20)  # the baseline has many ties
    design = HashedPoisson(seed=4, replicates=300, groups=256)
    layout = Layout(columns={"region": 4}, bootstrap=design, rank_resamples=("auc", "ap"))
    results = {parts: evaluate(split(rows, parts, seed=21), layout) for parts in (1, 3, 7)}
    data = PairedData(rows.label, rows.candidate, rows.baseline, Task.BINARY, 0.5)
    boot = make_poisson_bootstrap(n_rows=40_000, resamples=300, seed=4)
    for column, codes, k in ((OVERALL, None, 1), ("region", rows.codes["region"], 4)):
        found = results[1].columns[column]
        for name, kind in (("pr_auc", "ap"), ("roc_auc", "auc")):
            local = local_estimate(data, codes, k, name, boot)
            if kind == "ap":
                values = [found.auc[m].average_precision for m in (0, 1)]
                assert np.allclose(values[0], local.candidate, rtol=1e-12, atol=0)
                assert np.allclose(values[1], local.baseline, rtol=1e-12, atol=0)
            assert np.allclose(found.rank_se(kind), local.se, rtol=0.3), (column, kind)
            for parts in (3, 7):
                assert np.array_equal(
                    results[parts].columns[column].rank_se(kind), found.rank_se(kind)
                )


def evaluate_in_ranges(parts: list[Rows], layout: Layout, ranges: int) -> Any:
    """As the Dask engine does: each partition's tables cut into score ranges, merged range by
    range, pass 2 looked up range by range; no step holds a whole merged table."""
    firsts = [first_pass(p, layout) for p in parts]
    first = reduce(add, firsts)
    cuts = cuts_of(first.sketches, ranges)
    sliced = [split_tables(f.tables, cuts) for f in firsts]
    merged = [merge_slices([s[r] for s in sliced]) for r in range(ranges)]
    offsets = range_offsets([slice_counts(m) for m in merged])
    prepared = [
        prepare_range(merged[r], layout, offsets=offsets[r], cuts=cuts, range_=r)
        for r in range(ranges)
    ]
    lookups = [
        [
            look_up(part, prep, layout)
            for part, prep in zip(by_range(p, cuts), prepared, strict=True)
        ]
        for p in parts
    ]
    second = reduce(
        add, [second_of(p, found, layout) for p, found in zip(parts, lookups, strict=True)]
    )
    auc = join_rank_counts([range_rank_counts(merged[r], offsets[r]) for r in range(ranges)])
    summary = FirstSummary(auc, first.losses, first.calibration, first.bootstrap, first.confusion)
    return finish(summary, second, layout)


DELONG_FIELDS = ("auc_candidate", "auc_baseline", "se_candidate", "se_baseline", "se_delta")


@pytest.mark.parametrize("ranges", [2, 5, 40])
def test_score_ranges_give_the_whole_tables_answers(ranges: int) -> None:
    """Pass 2 in score ranges: the DeLong moments, the exact AUCs and the resampled SEs
    equal the whole tables' to the bit, average precision to rounding, whatever
    the partitioning; 40 ranges leave some empty (the baseline's 1,000 distinct scores fill
    few sketch bins)."""
    rows = simulate(30_000, seed=22)
    design = HashedPoisson(seed=4, replicates=50, groups=64)
    resamples = ("auc", "ap")
    layout = Layout(columns={"region": 4, "tier": 3}, bootstrap=design, rank_resamples=resamples)
    whole = evaluate(split(rows, 3, seed=23), layout)
    for parts in (1, 3, 7):
        ranged = evaluate_in_ranges(split(rows, parts, seed=23), layout, ranges)
        for column, found in ranged.columns.items():
            expected = whole.columns[column]
            for field in (
                "auc_candidate",
                "auc_baseline",
                "se_candidate",
                "se_baseline",
                "se_delta",
            ):
                assert np.array_equal(
                    getattr(found.delong, field), getattr(expected.delong, field), equal_nan=True
                ), (parts, column, field)
            for m in (0, 1):
                assert np.array_equal(found.auc[m].concordant2, expected.auc[m].concordant2)
                assert np.allclose(
                    found.auc[m].average_precision,
                    expected.auc[m].average_precision,
                    rtol=1e-14,
                    atol=0,
                )
            for kind in resamples:  # from integer histograms: to the bit
                assert np.array_equal(found.rank_se(kind), expected.rank_se(kind))


def test_score_range_cuts_split_rows_evenly_and_keep_ties_together() -> None:
    rows = simulate(50_000, seed=24)
    first = first_pass(rows, Layout())
    cuts = cuts_of(first.sketches, 4)
    for m, score in enumerate((rows.candidate, rows.baseline)):
        assert cuts[m].shape == (3,) and np.all(np.diff(cuts[m]) >= 0)
        which = range_of(score, cuts[m])
        shares = np.bincount(which, minlength=4) / score.shape[0]
        assert np.all(np.abs(shares - 0.25) < 0.02), shares  # within a sketch bin of a quarter
        for value in np.unique(score)[:200]:  # a tied score lies in one range
            assert np.unique(which[score == value]).shape[0] == 1
    # One distinct score: every row in range 0, whatever the number of ranges.
    tied = Rows(
        row_id=np.arange(100),
        label=np.arange(100) % 2,
        candidate=np.full(100, 0.25),
        baseline=np.full(100, 0.5),
    )
    cuts = cuts_of(first_pass(tied, Layout()).sketches, 5)
    assert all(np.array_equal(range_of(np.full(3, 0.25), c), [0, 0, 0]) for c in cuts)


def test_no_confusion_counts_are_made_when_no_threshold_is_asked() -> None:
    layout = Layout(bootstrap=HashedPoisson(seed=0, replicates=10, groups=16))
    assert evaluate([simulate(2_000, seed=19)], layout).columns[OVERALL].confusion is None


# --- hashed Poisson bootstrap ---------------------------------------------------------------


@pytest.mark.parametrize("groups", [None, 64])
def test_bootstrap_replicates_do_not_depend_on_partitioning(groups: int | None) -> None:
    rows = simulate(12_000, seed=14)
    design = HashedPoisson(seed=2024, replicates=40, groups=groups)
    terms = np.concatenate(
        [
            loss_terms(label=rows.label, score=rows.candidate),
            loss_terms(label=rows.label, score=rows.baseline),
        ],
        axis=1,
    )
    found = []
    for parts in (1, 3, 7):
        rng = np.random.default_rng(parts)
        cuts = [
            0,
            *np.sort(rng.choice(np.arange(1, 12_000), parts - 1, replace=False)).tolist(),
            12_000,
        ]
        pieces = [
            bootstrap_sums(
                design,
                row_id=rows.row_id[a:b],
                terms=terms[a:b],
                codes=rows.codes["region"][a:b],
                n_segments=4,
            )
            for a, b in itertools.pairwise(cuts)
        ]
        found.append(reduce(lambda a, b: a + b, [pieces[i] for i in rng.permutation(parts)]))
    for other in found[1:]:
        assert np.array_equal(other.rows, found[0].rows)  # integer weights: bit for bit
        assert np.array_equal(other.limbs, found[0].limbs)  # exact fixed-point sums too


def test_hashed_poisson_weights_have_mean_and_variance_one() -> None:
    weights = HashedPoisson(seed=1, replicates=1).weights(np.arange(400_000), replicate=3)
    assert abs(weights.mean() - 1) < 0.01 and abs(weights.var() - 1) < 0.01
    again = HashedPoisson(seed=1, replicates=1).weights(np.arange(400_000)[::-1], replicate=3)
    assert np.array_equal(weights, again[::-1])  # a function of (row id, replicate)
    other_seed = HashedPoisson(seed=2, replicates=1).weights(np.arange(400_000), replicate=3)
    assert not np.array_equal(weights, other_seed)


def test_bootstrap_se_of_the_loss_difference_is_close_to_the_local_engine() -> None:
    rows = simulate(30_000, seed=15)
    layout = Layout(bootstrap=HashedPoisson(seed=0, replicates=200, groups=256))
    result = evaluate(split(rows, 3, seed=16), layout).columns[OVERALL]
    data = PairedData(rows.label, rows.candidate, rows.baseline, Task.BINARY, 0.5)
    local = estimate(
        data=data,
        codes=None,
        n_segments=1,
        metrics=[get_metric("brier", task=Task.BINARY)],
        delong=set(),
        bootstrap=make_poisson_bootstrap(n_rows=30_000, resamples=200, seed=0),
    )["brier"]
    # Different random groups, same estimator: within its Monte Carlo error (~10% at 200).
    assert result.loss_se is not None
    assert result.loss_se[0, 0] == pytest.approx(local.se[0], rel=0.3)


def test_wide_fixed_point_sums_are_exact_and_do_not_depend_on_partitioning() -> None:
    """Signed terms of any everyday size (regression's) sum to the correctly rounded total,
    bit for bit the same for any split of the rows."""
    rng = np.random.default_rng(21)
    values = np.concatenate(
        [rng.normal(0, 1e6, 50_000), rng.normal(0, 1e-9, 500), [-3.5e18, 1e18, 0.0, -0.0]]
    )
    cell = rng.integers(0, 3, values.size)
    whole = grouped_wide_fixed_sum(cell, values, 3)
    order = rng.permutation(values.size)
    split = reduce(
        np.add,
        (
            grouped_wide_fixed_sum(cell[order][a:b], values[order][a:b], 3)
            for a, b in itertools.pairwise([0, 7, 20_000, values.size])
        ),
    )
    assert list(limb_totals(split)) == list(limb_totals(whole))
    assert list(wide_to_float(whole)) == [math.fsum(values[cell == c]) for c in range(3)]
    for bad in ([np.nan], [2.0**64], [-np.inf]):
        with pytest.raises(ValueError, match="must be finite and below"):
            grouped_wide_fixed_sum(np.zeros(1, np.int64), np.asarray(bad), 1)


def test_regression_sums_give_scikit_learns_metrics_for_any_partitioning() -> None:
    rng = np.random.default_rng(8)
    n = 20_000
    target = rng.normal(1_000, 50, n)
    candidate, baseline = target + rng.normal(0, 5, n), target + rng.normal(0, 6, n)
    codes, row_id = rng.integers(0, 4, n), np.arange(n) * 3 + 11
    design = HashedPoisson(seed=5, replicates=200, groups=64)
    group = design.row_group(row_id)

    def sums(a: int, b: int) -> RegressionSums:
        return regression_sums(
            label=target[a:b],
            candidate=candidate[a:b],
            baseline=baseline[a:b],
            codes=codes[a:b],
            n_segments=4,
            group=group[a:b],
            groups=64,
        )

    whole = sums(0, n)
    merged = reduce(add, (sums(a, b) for a, b in itertools.pairwise([0, 123, 9_000, n])))
    reference = {
        "mae": mean_absolute_error,
        "rmse": lambda y, p: np.sqrt(mean_squared_error(y, p)),
        "r2": r2_score,
    }
    weights = design.group_weights()
    for metric, score in reference.items():
        points = whole.points(metric)
        for segment in range(4):
            rows = codes == segment
            assert points[segment, 0] == pytest.approx(
                score(target[rows], candidate[rows]), rel=1e-13
            )
            assert points[segment, 1] == pytest.approx(
                score(target[rows], baseline[rows]), rel=1e-13
            )
        np.testing.assert_array_equal(merged.points(metric), points)
        np.testing.assert_array_equal(
            merged.replicates(metric, weights), whole.replicates(metric, weights)
        )
    with pytest.raises(ValueError, match="NaN or infinite"):
        regression_sums(label=[1.0, np.nan], candidate=[1.0, 2.0], baseline=[1.0, 2.0])
