"""What a Slack user types and sees: command text, PR references, link instructions, messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from bot.commands.parser import CommandName
from bot.runtime.context import PromotionChange
from bot.slack.commands import SlashRequest, parse_slash
from bot.slack.identity import github_login, link_instructions
from bot.slack.notifications import render_message
from bot.slack.targets import PullTarget, parse_target
from evaluators.policy import parse_policy

PR = PullTarget("acme/model-registry", 12)


@pytest.mark.parametrize(
    "command, text, expected",
    [
        ("/shipyard", "approve acme/model-registry#12", SlashRequest(CommandName.APPROVE, PR, "")),
        (
            "/shipyard",
            "APPROVE acme/model-registry#12 looks  fine",
            SlashRequest(CommandName.APPROVE, PR, "looks  fine"),
        ),
        (
            "/shipyard",
            "block acme/model-registry#12 wait &lt;holiday&gt; &amp; more",
            SlashRequest(CommandName.BLOCK, PR, "wait <holiday> & more"),
        ),
        ("/approve", "acme/model-registry#12 ok", SlashRequest(CommandName.APPROVE, PR, "ok")),
        (
            "/shipyard",
            "rollback acme/model-registry#12 bad latency &lt;mobile&gt;",
            SlashRequest(CommandName.ROLLBACK, PR, "bad latency <mobile>"),
        ),
        ("/block", "acme/model-registry#12 freeze", SlashRequest(CommandName.BLOCK, PR, "freeze")),
        ("/shipyard", "", SlashRequest(CommandName.HELP, None, "")),
        ("/shipyard", "help", SlashRequest(CommandName.HELP, None, "")),
        ("/shipyard", "/status acme/model-registry#12", SlashRequest(CommandName.STATUS, PR, "")),
        (
            "/shipyard",
            "unblock <https://github.com/acme/model-registry/pull/12|#12>",
            SlashRequest(CommandName.UNBLOCK, PR, ""),
        ),
    ],
    ids=[
        "approve names its pull request",
        "the command name is case-insensitive and the note is kept",
        "slack's escapes are undone in the reason",
        "the approve alias needs no command word",
        "rollback names its pull request and keeps its reason",
        "the block alias needs no command word",
        "an empty command shows help",
        "help needs no pull request",
        "a leading slash on the command word is accepted",
        "a pull request url as slack links it is accepted",
    ],
)
def test_slash_command_text_is_understood(command: str, text: str, expected: SlashRequest) -> None:
    assert parse_slash(command, text, main="/shipyard") == expected


@pytest.mark.parametrize(
    "command, text, answer",
    [
        ("/shipyard", "deploy acme/model-registry#12", "`deploy` is not a Shipyard command"),
        ("/shipyard", "approve", "Name the pull request"),
        ("/shipyard", "approve acme/model-registry", "Name the pull request"),
        ("/shipyard", "rollback", "Name the pull request: `/shipyard rollback owner/repo#123 …`"),
        ("/approve", "#12", "Name the pull request"),
    ],
    ids=[
        "an unknown command is named and help follows",
        "a command without a pull request asks for one",
        "a repository without a number is not a pull request",
        "a rollback without a pull request asks for one",
        "a bare number is not enough",
    ],
)
def test_mistakes_are_explained(command: str, text: str, answer: str) -> None:
    parsed = parse_slash(command, text, main="/shipyard")
    assert isinstance(parsed, str) and answer in parsed


@pytest.mark.parametrize(
    "word",
    ["acme/model-registry#0", "acme#12", "acme/model-registry#12#3", "https://x/acme/r/issues/1"],
)
def test_things_that_are_not_pull_requests(word: str) -> None:
    assert parse_target(word) is None


def test_the_link_instructions_are_the_exact_yaml_that_links_the_user() -> None:
    text = link_instructions(
        repo="acme/model-registry", base_ref="main", team_id="T0TEAM", user_id="U0BOB"
    )
    snippet = text.split("```\n")[1].split("```")[0].replace("your-github-login", "bob")
    policy = parse_policy(yaml.safe_dump(yaml.safe_load(snippet)).encode())
    assert github_login(policy, team_id="T0TEAM", user_id="U0BOB") == "bob"
    assert github_login(policy, team_id="T0OTHER", user_id="U0BOB") is None


def test_the_message_shows_people_text_as_text_and_buttons_carry_the_sha() -> None:
    change = PromotionChange(
        repository="acme/model-registry",
        installation_id=1,
        pr_number=12,
        pr_title="<!channel> promote churn",
        pr_url="https://github.com/acme/model-registry/pull/12",
        head_sha="abcdef1234567890",
        gate_title="Blocked by oncall: <@U123> said so",
        gate_conclusion="failure",
        window_ends_at=datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
        headlines=("churn: roc_auc +0.012",),
        report_urls=("http://bot/reports/1",),
        policy=parse_policy(None),
    )
    text, blocks = render_message(change)
    shown = str(blocks)
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert "<@U123>" not in shown
    assert "*Review window ends:* 2026-11-25 09:00 UTC" in shown
    assert "<https://github.com/acme/model-registry/pull/12|acme/model-registry#12>" in shown
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Approve", "Block"]
    assert all('"sha":"abcdef1234567890"' in b["value"] for b in buttons)
    assert text.startswith("Shipyard: acme/model-registry#12 at abcdef1")


def test_the_message_shows_shadow_progress_as_text() -> None:
    change = PromotionChange(
        repository="acme/model-registry",
        installation_id=1,
        pr_number=12,
        pr_title="promote churn",
        pr_url=None,
        head_sha="abcdef1234567890",
        gate_title="Clear improvement: waiting for shadow traffic before merging automatically",
        gate_conclusion="action_required",
        window_ends_at=None,
        headlines=("churn: roc_auc +0.012",),
        report_urls=(),
        policy=parse_policy(None),
        shadow_lines=("churn: collecting: 3.0 h, 1,200 of 3,118 paired samples <@U1>",),
    )
    shown = str(render_message(change)[1])
    assert "*Shadow:* churn: collecting: 3.0 h, 1,200 of 3,118 paired samples" in shown
    assert "<@U1>" not in shown
