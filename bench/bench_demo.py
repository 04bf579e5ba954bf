"""Wall time of `shipyard demo`, each run in a fresh empty directory (cold prediction cache).

Run: `python bench/bench_demo.py [--rounds 3] [--reference DIR]`.
With `--reference DIR` (another checkout, e.g. `git archive COMMIT | tar -x -C DIR`) its demo
runs interleaved with this one (A B A B ...), so a busy machine slows both alike; medians and
the median of the pairwise ratios are printed. A run counts only if the story ends as it should.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DONE = "PR #2 blocked and not merged: True"


def _run(checkout: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    command = [
        sys.executable,
        "-m",
        "bot.cli.main",
        "demo",
        "--fixtures",
        str(checkout / "fixtures"),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        started = time.perf_counter()
        run = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
    # The last line is wrapped at the console's width: compare with the lines joined.
    if run.returncode != 0 or DONE not in " ".join(run.stdout.split()):
        raise SystemExit(f"the demo of {checkout} did not end as it should:\n{run.stdout[-2000:]}")
    return elapsed


def _list(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reference", type=Path, help="another checkout, run interleaved")
    args = parser.parse_args()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(args.rounds):
        ours.append(_run(ROOT))
        if args.reference is not None:
            theirs.append(_run(args.reference.resolve()))
    print(f"shipyard demo:      median {statistics.median(ours):.2f} s  ({_list(ours)})")
    if theirs:
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        print(f"reference checkout: median {statistics.median(theirs):.2f} s  ({_list(theirs)})")
        print(f"ratio (pairwise median): {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
