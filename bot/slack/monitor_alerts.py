"""Production monitoring alerts in the policy's Slack channel: one message per model, check and
episode, posted when the alert is raised and edited as it escalates and resolves. Sent through
the notifier's outbox effect (`SLACK_MESSAGE`), so a repeated visit edits, never re-posts."""

from __future__ import annotations

from bot.base.clock import Clock
from bot.runtime import outbox
from bot.runtime.context import MonitorAlert
from bot.slack.notifications import SLACK_MESSAGE, SlackRuntime, escape
from bot.store.db import Store

_ICON = {"resolved": "✅", "warning": "⚠️", "critical": "🚨"}


def render_alert(alert: MonitorAlert) -> str:
    text = f"{_ICON.get(alert.status, '')} *{escape(alert.title)}*"
    if alert.line:
        text += f"\n{escape(alert.line)}"
    if alert.issue_number is not None:
        text += f"\nGitHub issue #{alert.issue_number} in {escape(alert.repository)}"
    if alert.report_url:
        text += f"\n<{alert.report_url}|Drift report>"
    return text


class MonitorAlerts:
    """An alert listener; needs the Notifier installed (it carries the messages out)."""

    def __init__(self, *, store: Store, clock: Clock) -> None:
        self._runtime = SlackRuntime(store=store, clock=clock)

    def __call__(self, alert: MonitorAlert) -> None:
        channel = alert.policy.slack.channel
        if channel is None:
            return
        text = render_alert(alert)
        outbox.submit(
            self._runtime,
            key=outbox.effect_key("slack-monitor", alert.key),
            kind=SLACK_MESSAGE,
            payload={
                "channel": channel,
                "text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            },
            installation_id=None,
            replace=True,
        )
