"""Carry out one command a Slack user gave about one PR, through the one command path."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.commands.command_service import ANY_HEAD, CANARY_ACTIONS, execute
from bot.commands.parser import CommandName, parse_commands
from bot.github.api import GitHubError
from bot.github.registry_reader import read_policy, read_production
from bot.promotion import audit
from bot.promotion.pr_refresh import get_pull, refresh_pr
from bot.promotion.promotion_state import head_seen_by
from bot.runtime.context import BotContext
from bot.runtime.outbox_replies import post_reply
from bot.slack.identity import github_login, link_instructions, slack_identity
from bot.slack.installations import installation_for
from bot.slack.targets import PullTarget
from evaluators.escaping import code_span, markdown_to_mrkdwn, markdown_to_plain, mrkdwn
from evaluators.policy import PolicyError

log = logging.getLogger(__name__)

# Commands that change the record; they leave a comment on the PR saying who acted from Slack.
_CHANGING = frozenset(
    {CommandName.APPROVE, CommandName.BLOCK, CommandName.UNBLOCK, CommandName.RETEST}
    | CANARY_ACTIONS.keys()
)


@dataclass(frozen=True)
class SlackActor:
    """A Slack user, by ids only."""

    team_id: str
    user_id: str


def act(
    ctx: BotContext,
    *,
    target: PullTarget,
    name: CommandName,
    args: str,
    actor: SlackActor,
    request_key: str,
    expected_sha: str | None = None,
    signed_at: datetime | None = None,
) -> str:
    """Do what `/name args` asks on `target` for `actor`; the answer to show them (mrkdwn).

    An approval binds to the head it was given for: the head a button shows (`expected_sha`),
    else the head recorded as current when the person sent the command (`signed_at`; unknown
    binds to nothing). A push in between, even one handled first, makes them approve again.
    """
    installation_id = installation_for(ctx.github, target.repo)
    if installation_id is None:
        return f"Shipyard is not installed on `{target.repo}`."
    client = ctx.github.installation(installation_id)
    try:
        pull = get_pull(client, target.repo, target.number)
    except GitHubError as exc:
        if exc.status == 404:
            return f"There is no pull request `{target}`."
        raise
    production = read_production(client, target.repo)  # policy and people: the default branch
    try:
        policy = read_policy(client, target.repo, production.sha)
    except PolicyError as exc:
        problem = mrkdwn(str(exc), max_length=500)
        return f"The policy on `{production.branch}` of `{target.repo}` is invalid: {problem}"
    login = github_login(policy, team_id=actor.team_id, user_id=actor.user_id)
    if login is None:
        return link_instructions(
            repo=target.repo,
            base_ref=production.branch,
            team_id=actor.team_id,
            user_id=actor.user_id,
        )
    if expected_sha is not None and name is CommandName.APPROVE and pull.head.sha != expected_sha:
        return (
            f"Not approved: this message is about `{expected_sha[:7]}`, but `{target}` is now at "
            f"`{pull.head.sha[:7]}`. Approvals bind to the commit they were given for."
        )
    seen_head: str | None = ANY_HEAD  # the button's head was checked just above
    if expected_sha is None and name is CommandName.APPROVE:
        with ctx.store.session() as session:
            seen_head = head_seen_by(
                session, repository=target.repo, pr_number=pull.number, at=signed_at
            )
    one_line = " ".join(args.split())  # one command only: a newline must not start another
    command = parse_commands(f"/{name.value} {one_line}".rstrip())[0]
    outcome = execute(
        ctx,
        client=client,
        repo=target.repo,
        installation_id=installation_id,
        pull=pull,
        policy=policy,
        actor=login,
        command=command,
        source="slack",
        surface="slack",
        production=production,
        seen_head=seen_head,
    )
    with ctx.store.session() as session:
        audit.record(
            session,
            at=ctx.clock.now(),
            repository=target.repo,
            kind="command",
            actor=login,
            pr_number=pull.number,
            head_sha=pull.head.sha,
            reason=f"{command.raw} → {markdown_to_plain(outcome.message)}"[:1000],
            detail={
                "key": f"slack:{request_key}",
                "acted": outcome.acted,
                "slack_user": slack_identity(team_id=actor.team_id, user_id=actor.user_id),
            },
        )
    if outcome.changed_state:  # the gate first, so the comment never runs ahead of it
        refresh_pr(
            ctx,
            client=client,
            repo=target.repo,
            pull=get_pull(client, target.repo, pull.number),
            policy=policy,
        )
    if outcome.acted and name in _CHANGING:
        # The login in code, not as an @-mention: GitHub would notify the person again.
        body = (
            f"{code_span(login)} acted from Slack: {code_span(command.raw, max_length=300)} "
            f"— {outcome.message}"
        )
        post_reply(  # once per Slack request, however often it is retried or redelivered
            ctx,
            installation_id=installation_id,
            key=f"{target.repo}#{pull.number}:slack:{request_key}",
            repo=target.repo,
            issue_number=pull.number,
            body=body,
        )
    return f"`{target}` as `{login}`: {to_mrkdwn(outcome.message)}"


def to_mrkdwn(markdown: str) -> str:
    """Our Markdown answers in Slack's mrkdwn: user text stays text (a block reason could say
    `<!channel>`), see `evaluators.escaping.markdown_to_mrkdwn`."""
    return markdown_to_mrkdwn(markdown)
