"""Burden of proof at full size: how often a candidate is auto-promoted, with known truth.

Binormal scores with known per-segment AUC differences (see tests/test_burden_of_proof.py).
Prints, per scenario, the share of trials eligible for auto-promotion, and how often the
Holm / Benjamini–Hochberg regression flags equal a written-out step-down / step-up.
Usage: python bench/burden_of_proof_trials.py [--trials 1000] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_burden_of_proof import (  # noqa: E402
    ALPHA,
    BETTER_EVERYWHERE,
    MIXED,
    WORSE,
    Scenario,
    evaluate,
    promotion_rate,
    reference_bh,
    reference_holm,
    reference_p,
)

from evaluators.report import Outcome  # noqa: E402

BOUNDARY = Scenario("5,000 rows -0.01, tolerance 0.01, exactly on the boundary",
                    (5000,) * 4, (0.02, 0.02, 0.02, -0.01), 0.01)  # fmt: skip


def flags_agree(*, correction: str, trials: int, seed: int) -> tuple[float, float]:
    """Share of trials whose flags equal the reference; share where they differ from Bonferroni."""
    reference = reference_holm if correction == "holm" else reference_bh
    rng = np.random.default_rng(seed)
    agree = differ = 0
    for _ in range(trials):
        report, _ = evaluate(MIXED, rng, correction=correction)
        judged = [s for s in report.segments if s.outcome is not Outcome.TOO_SMALL]
        metrics = [s.metrics[0] for s in judged]
        p = [reference_p(m.delta, m.se or 0.0, MIXED.tolerance) for m in metrics]
        flagged = {i for i, s in enumerate(judged) if s.outcome is Outcome.REGRESSED}
        agree += flagged == reference(p, ALPHA)
        differ += flagged != {i for i, value in enumerate(p) if value < ALPHA / len(p)}
    return agree / trials, differ / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"trials per scenario: {args.trials}, α = {ALPHA}")
    for offset, scenario in enumerate([*WORSE, BOUNDARY]):
        rate = promotion_rate(scenario, trials=args.trials, seed=args.seed + offset)
        target = "≈ α, not a target" if scenario is BOUNDARY else f"target ≤ {ALPHA:.0%}"
        print(f"truly worse, {scenario.name}: auto-promoted in {rate:.1%} ({target})")
    rate = promotion_rate(BETTER_EVERYWHERE, trials=args.trials, seed=args.seed + 10)
    print(f"{BETTER_EVERYWHERE.name}: auto-promoted in {rate:.1%} (target ≥ 80%)")
    for correction in ("holm", "benjamini-hochberg"):
        agree, differ = flags_agree(correction=correction, trials=args.trials, seed=args.seed + 20)
        print(
            f"{correction} flags equal the written-out reference in {agree:.1%} of trials; "
            f"differ from Bonferroni's in {differ:.1%}"
        )
    print(f"elapsed {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
