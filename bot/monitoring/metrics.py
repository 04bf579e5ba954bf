"""Production monitoring as Prometheus gauges, read from the store at scrape time (so every
replica reports the same values): each watched model's alert per check, the rows of its last
window, and the drift scores of its worst features."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import select

from bot.monitoring.check_state import CheckState
from bot.store.db import Store
from bot.store.models import MonitorStatus, ProductionMonitor
from evaluators.judgement.monitoring import AlertStatus, Check

_LEVEL = {AlertStatus.OK: 0, AlertStatus.WARNING: 1, AlertStatus.CRITICAL: 2}


def monitoring_gauges(store: Store, registry: CollectorRegistry) -> None:
    alert = Gauge(
        "shipyard_monitor_alert",
        "Production monitoring alert per check: 0 ok, 1 warning, 2 critical.",
        ["repository", "model", "version", "check"],
        registry=registry,
    )
    rows = Gauge(
        "shipyard_monitor_window_rows",
        "Requests in the last judged window.",
        ["repository", "model", "version"],
        registry=registry,
    )
    drift = Gauge(
        "shipyard_monitor_drift",
        "Drift of a feature in the last judged window (PSI, Jensen-Shannon distance, "
        "Wasserstein in reference standard deviations).",
        ["repository", "model", "version", "feature", "statistic"],
        registry=registry,
    )
    with store.session() as session:
        watched = list(
            session.scalars(
                select(ProductionMonitor).where(
                    ProductionMonitor.status == MonitorStatus.WATCHING.value
                )
            )
        )
        for monitor in watched:
            labels = (monitor.repository, monitor.model, monitor.version)
            for check in Check:
                state = CheckState.from_json((monitor.checks or {}).get(check.value))
                alert.labels(*labels, check.value).set(_LEVEL[state.status])
            if monitor.volume_history:
                rows.labels(*labels).set(monitor.volume_history[-1])
            for feature, values in (monitor.scores or {}).items():
                for statistic, value in values.items():
                    drift.labels(*labels, feature, statistic).set(value)


__all__ = ["monitoring_gauges"]
