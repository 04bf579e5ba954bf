"""Pairing production's and the shadow's log rows by request id: missing ids, duplicates
(counted once: the earliest row), unpaired on each side, coverage with a mirror share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluators.statistics.pairing import pair_requests


def _times(*minutes: int) -> pd.Series:
    return pd.Series(pd.to_datetime(list(minutes), unit="m", utc=True))


def test_ids_on_both_sides_pair_and_the_rest_are_counted_unpaired() -> None:
    pairing = pair_requests(production_ids=["a", "b", "c", "d"], shadow_ids=["c", "a", "z"])
    assert pairing.paired == 2
    assert pairing.unpaired_production == 2  # b, d never mirrored
    assert pairing.unpaired_shadow == 1  # z has no production row
    pairs = sorted(zip(pairing.production_rows.tolist(), pairing.shadow_rows.tolist(), strict=True))
    assert pairs == [(0, 1), (2, 0)]
    assert pairing.coverage() == 0.5


def test_a_duplicated_id_counts_once_for_its_earliest_row_on_each_side() -> None:
    pairing = pair_requests(
        production_ids=["a", "a", "b"],
        production_times=_times(5, 1, 2),
        shadow_ids=["a", "b", "b", "b"],
        shadow_times=_times(9, 7, 3, 8),
    )
    assert pairing.paired == 2
    assert pairing.production.duplicates == 1 and pairing.shadow.duplicates == 2
    assert pairing.production.requests == 2 and pairing.shadow.requests == 2
    pairs = dict(zip(pairing.production_rows.tolist(), pairing.shadow_rows.tolist(), strict=True))
    assert pairs == {1: 0, 2: 2}  # production's a at minute 1, shadow's b at minute 3
    assert pairing.coverage() == 1.0  # duplicates never push coverage past the truth


def test_without_times_the_first_row_in_the_log_wins() -> None:
    pairing = pair_requests(production_ids=["a", "a"], shadow_ids=["a", "a", "a"])
    assert pairing.production_rows.tolist() == [0] and pairing.shadow_rows.tolist() == [0]


def test_rows_without_an_id_are_never_paired_and_counted_apart() -> None:
    pairing = pair_requests(
        production_ids=pd.Series(["a", None, "", "b"], dtype="string"),
        shadow_ids=pd.Series(["a", None, ""], dtype="string"),
    )
    assert pairing.paired == 1
    assert pairing.production.missing_id == 2 and pairing.shadow.missing_id == 2
    assert pairing.production.requests == 2


def test_coverage_is_against_the_mirrored_share_and_unknown_without_production() -> None:
    ids = [f"r{i}" for i in range(1_000)]
    pairing = pair_requests(production_ids=ids, shadow_ids=ids[::4])
    assert pairing.coverage() == 0.25
    assert pairing.coverage(mirror_share=0.25) == 1.0
    assert np.isnan(pair_requests(production_ids=[], shadow_ids=["a"]).coverage())


def test_shuffling_and_doubling_the_logs_changes_no_count() -> None:
    """Property: the pairing depends on the set of (id, time) rows, not their order or repeats."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        production = pd.DataFrame({"id": [f"r{i}" for i in rng.choice(500, 400, replace=False)]})
        production["t"] = rng.permutation(len(production))
        shadow = production.sample(frac=0.9, random_state=int(rng.integers(1_000)))
        base = pair_requests(
            production_ids=production["id"],
            shadow_ids=shadow["id"],
            production_times=production["t"],
            shadow_times=shadow["t"],
        )
        doubled = pd.concat([shadow, shadow.sample(frac=0.3, random_state=1)]).sample(frac=1.0)
        again = pair_requests(
            production_ids=production["id"].iloc[::-1],
            shadow_ids=doubled["id"],
            production_times=production["t"].iloc[::-1],
            shadow_times=doubled["t"],
        )
        assert again.paired == base.paired == len(shadow)
        assert again.unpaired_production == base.unpaired_production
        assert again.shadow.duplicates == len(doubled) - len(shadow)
        assert again.coverage() == base.coverage()
