"""Production p99 with every request mirrored to a shadow, against no mirroring: paired rounds.

Run: `python bench/bench_mirror_p99.py [--pairs 20] [--seconds 3] [--load-share 0.5]`.

Three gateways run for the whole benchmark: two that answer from production only ("plain A"
and "plain B") and one that also mirrors 100% of requests to a shadow (`--mirror-mode`, the
worker process by default). wrk drives them in turn, at the same fixed rate (a share of plain
A's saturation, measured first), in an order that reverses every round (A B M, M B A, ...), so
a burst of load from elsewhere on the machine hits all three alike. Each round gives ratios of
p99s: mirrored / plain A and mirrored / the mean of both plain ones (the effect), and plain B /
plain A (the machine's own noise for this comparison, an A/A control). Printed: each ratio's
median over rounds with a 95% bootstrap interval over rounds, the mirrored requests and the
drops.

Issue 13's goal: mirroring raises production p99 by at most 10% (ratio <= 1.10), with zero
drops, below 80% of saturation. The A/A interval says how small an effect this machine can show.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_gateway import (  # noqa: E402
    BENCHMARK,
    FEATURES,
    MODEL_DIR,
    SHADOW_DIR,
    body,
    drops_by_reason,
    metric_total,
    sequential_ms,
    server,
    shadow_answers,
    wrk,
)
from gateway.routing import Deployed, ModelRoute, Routing, ShadowSlot, save_routing  # noqa: E402
from gateway.store import ArtifactStore  # noqa: E402


def _median_interval(ratios: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """The median and its 95% percentile-bootstrap interval over rounds."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ratios), size=(10_000, len(ratios)))
    medians = np.median(ratios[picks], axis=1)
    low, high = np.quantile(medians, [0.025, 0.975])
    return float(np.median(ratios)), float(low), float(high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=20, help="rounds (each: A, B, mirrored)")
    parser.add_argument("--seconds", type=int, default=3, help="of wrk per gateway per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--load-share", type=float, default=0.5, help="of gateway saturation")
    parser.add_argument("--mirror-mode", choices=["process", "thread"], default="process")
    args = parser.parse_args()

    rows = pd.read_parquet(BENCHMARK, columns=FEATURES).head(200)
    bodies = [body(r) for r in rows.to_numpy(dtype=np.float32)]

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        store = ArtifactStore(str(Path(tmp) / "store"))
        prod = Deployed(
            version="1.0.0", sha256=store.publish(MODEL_DIR, model="churn", version="1.0.0")
        )
        shadow = ShadowSlot(
            version="1.1.0",
            sha256=store.publish(SHADOW_DIR, model="churn", version="1.1.0"),
            mirror_share=1.0,
        )
        plain, mirrored = Path(tmp) / "plain.json", Path(tmp) / "mirrored.json"
        save_routing(plain, Routing(models={"churn": ModelRoute(production=prod)}))
        save_routing(
            mirrored, Routing(models={"churn": ModelRoute(production=prod, shadow=shadow)})
        )
        serve = [sys.executable, "-m", "gateway.cli", "serve", "--store", store.url]
        urls = {
            "plain A": stack.enter_context(server([*serve, "--routing", str(plain)])),
            "plain B": stack.enter_context(server([*serve, "--routing", str(plain)])),
            "mirrored": stack.enter_context(
                server([*serve, "--routing", str(mirrored), "--mirror-mode", args.mirror_mode])
            ),
        }
        for url in urls.values():
            sequential_ms(url, bodies)  # warm up: every model loaded, the shadow worker started
        saturation = max(
            wrk(urls["plain A"], bodies[0], args.seconds, args.connections)[0] for _ in range(2)
        )
        target = saturation * args.load_share
        typical_ms = float(np.median(sequential_ms(urls["plain A"], bodies)))
        delay_ms = max(1000 * args.connections / target - typical_ms, 0.0)
        mirrored_before = shadow_answers(urls["mirrored"])

        p99: dict[str, list[float]] = {label: [] for label in urls}
        rates: dict[str, list[float]] = {label: [] for label in urls}
        errors = 0
        for round_ in range(args.pairs):
            order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
            for label in order:
                rate, tail, non_2xx = wrk(
                    urls[label], bodies[0], args.seconds, args.connections, delay_ms
                )
                p99[label].append(tail)
                rates[label].append(rate)
                errors += non_2xx
        mirrored_total = metric_total(urls["mirrored"], "shipyard_gateway_mirrored_total")
        answered = shadow_answers(urls["mirrored"]) - mirrored_before
        drops = drops_by_reason(urls["mirrored"])

    a, b, m = (np.asarray(p99[label]) for label in ("plain A", "plain B", "mirrored"))
    effect = _median_interval(m / a)
    pooled = _median_interval(m / ((a + b) / 2))
    control = _median_interval(b / a)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(
        f"fixed rate ~{target:.0f}/s ({args.load_share:.0%} of {saturation:.0f}/s), "
        f"{args.pairs} rounds of {args.seconds} s per gateway, shadow in a {args.mirror_mode}"
    )
    for label, found in p99.items():
        print(
            f"  {label:9s} p99 median {np.median(found):.2f} ms "
            f"(min {min(found):.2f}, max {max(found):.2f}); "
            f"rate median {np.median(rates[label]):.0f}/s"
        )
    print(
        f"p99 mirrored / plain A: median {effect[0]:.3f} "
        f"(95% CI {effect[1]:.3f} to {effect[2]:.3f}); goal <= 1.10"
    )
    print(
        f"p99 mirrored / mean of plain A and B: median {pooled[0]:.3f} "
        f"(95% CI {pooled[1]:.3f} to {pooled[2]:.3f})"
    )
    print(
        f"p99 plain B / plain A (A/A control): median {control[0]:.3f} "
        f"(95% CI {control[1]:.3f} to {control[2]:.3f})"
    )
    print(
        f"mirrored {mirrored_total:.0f}, answered by the shadow {answered:.0f}, "
        f"dropped {sum(drops.values()):.0f} {drops or ''} (goal 0); non-2xx {errors}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
