"""`shipyard monitor <model>`: how production monitoring sees a model, from the bot's store."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from bot.monitoring.status import MonitorSeen


def render_text(seen: list[MonitorSeen], *, public_url: str) -> str:
    if not seen:
        return "Not watched: no version of this model was promoted by a Shipyard canary."
    out = []
    for monitor in seen:
        out.append(
            f"{monitor.repository} {monitor.model} {monitor.version} ({monitor.status}), "
            f"promoted by #{monitor.pr_number} at {monitor.promoted_at:%Y-%m-%d %H:%M} UTC"
        )
        for check in monitor.checks:
            line = f"  {check.check:<17} {check.status}"
            if check.status != "ok" and check.since:
                line += f" since {check.since[:16].replace('T', ' ')} UTC"
            line += f"  ({check.bad_run} bad, {check.clean_run} clean in a row"
            alerts = "alert" if check.episode == 1 else "alerts"
            line += f"; {check.episode} {alerts} so far)" if check.episode else ")"
            out.append(line)
        if monitor.last_severity:
            out.append(
                f"  last window to {monitor.window_end:%Y-%m-%d %H:%M} UTC: {monitor.last_severity}"
            )
            out += [f"    - {line}" for line in monitor.lines[:10]]
        else:
            out.append("  no window judged yet")
        if monitor.last_report_id:
            out.append(f"  drift report: {public_url.rstrip('/')}/drift/{monitor.last_report_id}")
    return "\n".join(out)


def render_json(seen: list[MonitorSeen]) -> str:
    def plain(monitor: MonitorSeen) -> dict[str, Any]:
        data = asdict(monitor)
        data["promoted_at"] = monitor.promoted_at.isoformat()
        data["window_end"] = monitor.window_end.isoformat()
        return data

    return json.dumps([plain(m) for m in seen], indent=2)
