"""Synthetic gateway metrics as OpenMetrics text with timestamps: 26 hours, one sample a minute,
written with the gateway's own metric names so `promtool tsdb create-blocks-from openmetrics`
can backfill a real Prometheus with history.

The traffic is chosen so the right answers are known exactly (see the test's expectations):
- churn 1.0.0, production: 600 requests a minute, 1% errors, latency p50/p95/p99 at the
  10/50/100 ms bucket bounds, mean score 0.30;
- churn 1.1.0, canary: 60 a minute, one bucket slower; 1% errors until hour 20, 10% after;
  idle (counters flat) from hour 10 to hour 12;
- churn 1.2.0, shadow: 600 mirrored a minute, never an error (no error series at all), mean
  score 0.35; the gateway drops 3 mirrors a minute from hour 24 on (no drop series before).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from gateway import names

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
HOURS = 26
LATENCY_LE = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SCORE_LE = (0.1, 0.25, 0.5, 0.75, 0.9)
PROD_LATENCY = (60, 240, 180, 90, 24, 6, 0, 0, 0)  # per minute, per bucket, +Inf last
CANARY_LATENCY = (0, 6, 24, 18, 9, 2.4, 0.6, 0, 0)
PROD_SCORE, PROD_SCORE_SUM = (120, 240, 120, 60, 30, 30), 180.0
SHADOW_SCORE, SHADOW_SCORE_SUM = (90, 240, 150, 60, 30, 30), 210.0


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def _canary_rates(minute: int) -> tuple[float, float]:
    """(ok, error) requests in this minute for the canary."""
    hour = minute / 60
    if 10 <= hour < 12:
        return 0.0, 0.0
    return (59.4, 0.6) if hour < 20 else (54.0, 6.0)


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _histogram_lines(
    metric: str,
    labels: dict[str, str],
    bounds: tuple[float, ...],
    cumulative: list[float],
    total: float,
) -> Iterator[str]:
    for le, count in zip((*bounds, "+Inf"), cumulative, strict=True):
        yield f"{metric}_bucket{_labels(**labels, le=str(le))} {count:.6f}"
    yield f"{metric}_count{_labels(**labels)} {cumulative[-1]:.6f}"
    yield f"{metric}_sum{_labels(**labels)} {total:.6f}"


def _cumulate(per_bucket: tuple[float, ...], scale: float) -> list[float]:
    out, running = [], 0.0
    for count in per_bucket:
        running += count * scale
        out.append(running)
    return out


def openmetrics() -> str:
    minutes = range(HOURS * 60 + 1)
    stamps = [START.timestamp() + 60 * m for m in minutes]
    prod = {"model": "churn", "variant": "production", "version": "1.0.0"}
    canary = {"model": "churn", "variant": "canary", "version": "1.1.0"}
    shadow = {"model": "churn", "variant": "shadow", "version": "1.2.0"}
    # Cumulative canary traffic (it changes rate and pauses), minute by minute.
    canary_ok, canary_err, canary_n = [0.0], [0.0], [0.0]
    for m in minutes[1:]:
        ok, err = _canary_rates(m - 1)
        canary_ok.append(canary_ok[-1] + ok)
        canary_err.append(canary_err[-1] + err)
        canary_n.append(canary_n[-1] + ok + err)

    lines = [f"# TYPE {names.REQUESTS} counter"]
    for m, ts in zip(minutes, stamps, strict=True):
        r = f"{names.REQUESTS}_total"
        lines += [
            f"{r}{_labels(**prod, outcome='ok')} {594.0 * m} {ts:.0f}",
            f"{r}{_labels(**prod, outcome='error')} {6.0 * m} {ts:.0f}",
            f"{r}{_labels(**canary, outcome='ok')} {canary_ok[m]:.6f} {ts:.0f}",
            f"{r}{_labels(**canary, outcome='error')} {canary_err[m]:.6f} {ts:.0f}",
            f"{r}{_labels(**shadow, outcome='ok')} {600.0 * m} {ts:.0f}",
        ]
    lines.append(f"# TYPE {names.LATENCY_SECONDS} histogram")
    for m, ts in zip(minutes, stamps, strict=True):
        for labels, shape, scale in (
            (prod, PROD_LATENCY, float(m)),
            (shadow, PROD_LATENCY, float(m)),
            (canary, CANARY_LATENCY, canary_n[m] / 60),
        ):
            cumulative = _cumulate(shape, scale)
            lines += [
                f"{line} {ts:.0f}"
                for line in _histogram_lines(
                    names.LATENCY_SECONDS, labels, LATENCY_LE, cumulative, 0.02 * cumulative[-1]
                )
            ]
    lines.append(f"# TYPE {names.SCORE} histogram")
    for m, ts in zip(minutes, stamps, strict=True):
        for labels, shape, total in (
            (prod, PROD_SCORE, PROD_SCORE_SUM),
            (shadow, SHADOW_SCORE, SHADOW_SCORE_SUM),
        ):
            cumulative = _cumulate(shape, float(m))
            lines += [
                f"{line} {ts:.0f}"
                for line in _histogram_lines(names.SCORE, labels, SCORE_LE, cumulative, total * m)
            ]
    lines.append(f"# TYPE {names.MIRRORED} counter")
    mirrored = _labels(model="churn", version="1.2.0")
    lines += [
        f"{names.MIRRORED}_total{mirrored} {600.0 * m} {ts:.0f}"
        for m, ts in zip(minutes, stamps, strict=True)
    ]
    lines.append(f"# TYPE {names.MIRROR_DROPPED} counter")
    dropped = _labels(model="churn", reason="queue_full")
    lines += [
        f"{names.MIRROR_DROPPED}_total{dropped} {3.0 * (m - 24 * 60)} {ts:.0f}"
        for m, ts in zip(minutes, stamps, strict=True)
        if m >= 24 * 60
    ]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
