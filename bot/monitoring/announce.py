"""Tell people about a monitoring check's episode: a GitHub issue in the registry (opened when
the alert is raised, edited at every window of the episode, closed when it resolves), a Slack
message (posted, then edited), and for critical alerts a PagerDuty incident (triggered once,
resolved on recovery). Each is an outbox effect keyed on the model, version, check and
episode, so a repeated visit, a crash or a second replica never doubles one."""

from __future__ import annotations

from sqlalchemy import select

from bot.monitoring import alert_issue
from bot.monitoring.check_state import CheckState
from bot.paging import page_effect
from bot.paging.events import Link, Page
from bot.runtime.context import BotContext, MonitorAlert
from bot.store.models import ProductionMonitor
from evaluators.escaping import markdown
from evaluators.judgement.monitoring import AlertStatus, Check
from evaluators.policy import Policy


def episode_key(monitor: ProductionMonitor, check: Check, episode: int) -> str:
    return f"{monitor.repository}/{monitor.model}/{monitor.version}/{check.value}/{episode}"


def dedup_key(monitor: ProductionMonitor, check: Check, episode: int) -> str:
    """One incident per model, check and episode."""
    return f"shipyard/{episode_key(monitor, check, episode)}"


def report_url(ctx: BotContext, report_id: str | None) -> str | None:
    return f"{ctx.settings.public_url.rstrip('/')}/drift/{report_id}" if report_id else None


def _state_word(state: CheckState) -> str:
    if state.status is AlertStatus.OK:
        return "resolved"
    return state.status.value


def issue_title(monitor: ProductionMonitor, check: Check, state: CheckState) -> str:
    return (
        f"{check.label.capitalize()} on {monitor.model} {monitor.version}: {_state_word(state)}"
    )[:250]


def issue_body(ctx: BotContext, monitor: ProductionMonitor, check: Check, state: CheckState) -> str:
    if state.status is AlertStatus.OK:
        why = (
            f"replaced in production by `{markdown(state.replaced_by)}`"
            if state.replaced_by
            else "clean windows in a row"
        )
        status = f"**Resolved** at {state.resolved_at} ({why}); it reached {state.worst.value}."
    else:
        status = f"**{state.status.value.capitalize()}** since {state.episode_started}."
    lines = [
        f"Shipyard watches **{markdown(monitor.model)}** `{markdown(monitor.version)}` in "
        f"production, promoted by #{monitor.pr_number} (merge {monitor.merge_sha[:12]}).",
        "",
        f"{check.label.capitalize()}, episode {state.episode}: {status}",
        "",
        "| Window ends (UTC) | Severity | Worst finding | Report |",
        "|---|---|---|---|",
    ]
    for window in state.episode_windows():
        url = report_url(ctx, window.report_id)
        lines.append(
            f"| {window.end[:16].replace('T', ' ')} | {window.severity} | "
            f"{markdown(window.line, max_length=200) or '-'} | "
            + (f"[drift report]({url})" if url else "-")
            + " |"
        )
    lines += [
        "",
        "What to do: open the latest drift report. If the world moved, retrain on recent data "
        "and propose the model in a pull request; if the inputs are broken, fix the producer. "
        "This issue is updated at every window and closed when the check is clean again.",
    ]
    return "\n".join(lines)


def _latest_line(state: CheckState) -> str:
    windows = state.episode_windows()
    return windows[-1].line if windows else ""


def _issue(
    ctx: BotContext, monitor: ProductionMonitor, check: Check, state: CheckState
) -> int | None:
    effect = alert_issue.show_issue(
        ctx,
        installation_id=monitor.installation_id,
        repo=monitor.repository,
        key=episode_key(monitor, check, state.episode),
        title=issue_title(monitor, check, state),
        body=issue_body(ctx, monitor, check, state),
        closed=state.status is AlertStatus.OK,
    )
    return alert_issue.issue_number(effect)


def _tell(
    ctx: BotContext,
    monitor: ProductionMonitor,
    check: Check,
    state: CheckState,
    policy: Policy,
    issue: int | None,
) -> None:
    """Warnings and worse reach the team where it talks (Slack subscribes)."""
    windows = state.episode_windows()
    alert = MonitorAlert(
        key=episode_key(monitor, check, state.episode),
        repository=monitor.repository,
        model=monitor.model,
        version=monitor.version,
        check=check.label,
        status=_state_word(state),
        title=issue_title(monitor, check, state),
        line=_latest_line(state),
        report_url=report_url(ctx, windows[-1].report_id) if windows else None,
        issue_number=issue,
        policy=policy,
    )
    for listener in ctx.alert_listeners:
        listener(alert)


def _page(
    ctx: BotContext,
    monitor: ProductionMonitor,
    check: Check,
    state: CheckState,
    issue: int | None,
) -> None:
    if not state.paged:
        return
    key = dedup_key(monitor, check, state.episode)
    if state.status is AlertStatus.OK:
        page_effect.resolve(ctx, ctx.settings, key)
        return
    windows = state.episode_windows()
    url = report_url(ctx, windows[-1].report_id) if windows else None
    links = [Link(href=url, text="Drift report")] if url else []
    page = Page(
        dedup_key=key,
        summary=f"{check.label.capitalize()} on {monitor.model} {monitor.version}: "
        f"{_latest_line(state)}"[:1000],
        source=f"shipyard/{monitor.repository}",
        severity="critical",
        component=monitor.model,
        group=monitor.repository,
        event_class=f"monitoring {check.value}",
        custom_details={
            "model": monitor.model,
            "version": monitor.version,
            "check": check.label,
            "since": state.episode_started,
            "windows": [f"{w.end} {w.severity}: {w.line}" for w in windows[-10:]],
            "promoted_by_pull_request": monitor.pr_number,
            "github_issue": issue,
            "what_now": "Open the drift report; if the world moved, retrain and propose the "
            "model in a pull request; if inputs are broken, fix the producer. The incident "
            "resolves by itself after clean windows.",
        },
        links=tuple(links),
    )
    page_effect.trigger(ctx, ctx.settings, page)


def announce(ctx: BotContext, monitor: ProductionMonitor, policy: Policy) -> None:
    """Submit what each check's latest change owes people, then mark it handed over."""
    for check in Check:
        state = CheckState.from_json((monitor.checks or {}).get(check.value))
        if not state.announce:
            continue
        if state.episode > 0:
            issue = _issue(ctx, monitor, check, state)
            _tell(ctx, monitor, check, state, policy, issue)
            _page(ctx, monitor, check, state, issue)
        _handed_over(ctx, monitor.id, check, state)


def _handed_over(ctx: BotContext, monitor_id: int, check: Check, state: CheckState) -> None:
    """Clear `announce`, unless a newer window changed the check meanwhile."""
    with ctx.store.session() as session:
        live = session.scalar(
            select(ProductionMonitor).where(ProductionMonitor.id == monitor_id).with_for_update()
        )
        if live is None or (live.checks or {}).get(check.value) != state.to_json():
            return
        checks = dict(live.checks)
        checks[check.value] = {**state.to_json(), "announce": False}
        live.checks = checks


__all__ = ["announce", "dedup_key", "episode_key", "issue_body", "issue_title", "report_url"]
