"""CommentEvent from GitHub's own example webhook payloads, and which events must run no command."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.commands.comment_event import (
    AuthorAssociation,
    AuthorType,
    CommentAction,
    CommentEvent,
    CommentSource,
    from_issue_comment,
    from_pull_request_review,
    from_review_comment,
    should_ignore,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures/github/webhooks-examples.json.gz"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BOT = "shipyard[bot]"


def _examples(name: str) -> list[dict[str, Any]]:
    with gzip.open(EXAMPLES, "rt", encoding="utf-8") as handle:
        groups = json.load(handle)
    return next(group["examples"] for group in groups if group["name"] == name)


def _on_a_pull_request(payload: dict[str, Any]) -> dict[str, Any]:
    # GitHub's examples comment on a plain issue; on a PR, the issue carries "pull_request".
    payload = copy.deepcopy(payload)
    url = payload["repository"]["url"]
    number = payload["issue"]["number"]
    payload["issue"]["pull_request"] = {"url": f"{url}/pulls/{number}"}
    return payload


def test_an_issue_comment_on_a_plain_issue_is_no_event() -> None:
    examples = _examples("issue_comment")
    assert examples
    assert all(from_issue_comment(p, received_at=NOW) is None for p in examples)


def test_an_issue_comment_on_a_pull_request_becomes_an_event() -> None:
    payload = _on_a_pull_request(_examples("issue_comment")[0])
    assert from_issue_comment(payload, received_at=NOW) == CommentEvent(
        source=CommentSource.ISSUE_COMMENT,
        repository="Codertocat/Hello-World",
        pr_number=1,
        author="Codertocat",
        author_type=AuthorType.USER,
        author_association=AuthorAssociation.OWNER,
        body="You are totally right! I'll get this fixed right away.",
        action=CommentAction.CREATED,
        comment_id=492700400,
        html_url="https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400",
        installation_id=None,
        received_at=NOW,
    )


def test_every_issue_comment_example_on_a_pull_request_parses_with_its_action() -> None:
    for payload in _examples("issue_comment"):
        event = from_issue_comment(_on_a_pull_request(payload), received_at=NOW)
        assert event is not None
        assert event.action == payload["action"]
        expected = payload.get("installation", {}).get("id")
        assert event.installation_id == expected


def test_every_review_example_parses_and_an_empty_review_has_an_empty_body() -> None:
    events = [
        from_pull_request_review(p, received_at=NOW) for p in _examples("pull_request_review")
    ]
    assert {e.action for e in events} == {CommentAction.SUBMITTED, CommentAction.DISMISSED}
    assert all(e.source is CommentSource.PULL_REQUEST_REVIEW and e.pr_number == 2 for e in events)
    assert all(e.body == "" for e in events)  # GitHub sends "body": null for a bare review


def test_every_review_comment_example_parses() -> None:
    events = [
        from_review_comment(p, received_at=NOW) for p in _examples("pull_request_review_comment")
    ]
    assert {e.action for e in events} == {
        CommentAction.CREATED,
        CommentAction.DELETED,
        CommentAction.EDITED,
    }
    first = events[0]
    assert (first.source, first.pr_number, first.comment_id) == (
        CommentSource.REVIEW_COMMENT,
        2,
        284312630,
    )
    assert first.body == "Maybe you should use more emoji on this line."


def test_a_payload_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValidationError):
        from_review_comment(_examples("issue_comment")[0], received_at=NOW)


def _event(**changes: Any) -> CommentEvent:
    base = from_issue_comment(_on_a_pull_request(_examples("issue_comment")[0]), received_at=NOW)
    assert base is not None
    return base.model_copy(update=changes)


IGNORE_CASES = [
    pytest.param({}, None, id="a person's new comment is read"),
    pytest.param({"action": CommentAction.SUBMITTED}, None, id="a submitted review is read"),
    pytest.param({"action": CommentAction.EDITED}, "edited", id="an edited comment is ignored"),
    pytest.param({"action": CommentAction.DELETED}, "deleted", id="a deleted comment is ignored"),
    pytest.param(
        {"action": CommentAction.DISMISSED}, "dismissed", id="a dismissed review is ignored"
    ),
    pytest.param(
        {"author": "Shipyard[bot]", "author_type": AuthorType.BOT},
        "bot's own",
        id="the bot's own comment is ignored",
    ),
    pytest.param(
        {"author": "dependabot[bot]", "author_type": AuthorType.BOT},
        "a bot",
        id="another bot's comment is ignored",
    ),
    pytest.param({"body": ""}, "empty", id="an empty comment is ignored"),
    pytest.param({"body": " \n\t"}, "empty", id="a blank comment is ignored"),
]


@pytest.mark.parametrize(("changes", "reason_contains"), IGNORE_CASES)
def test_should_ignore(changes: dict[str, Any], reason_contains: str | None) -> None:
    reason = should_ignore(_event(**changes), bot_login=BOT)
    if reason_contains is None:
        assert reason is None
    else:
        assert reason is not None and reason_contains in reason


def test_the_bot_is_recognised_from_its_bare_slug_too() -> None:
    event = _event(author="shipyard[bot]", author_type=AuthorType.BOT)
    assert should_ignore(event, bot_login="shipyard") == "the comment is the bot's own"


def test_without_a_received_time_github_s_own_timestamp_is_used() -> None:
    comment = _on_a_pull_request(_examples("issue_comment")[0])
    review = _examples("pull_request_review")[0]
    event = from_issue_comment(comment)
    assert event is not None
    assert event.received_at == datetime(2019, 5, 15, 15, 20, 21, tzinfo=UTC)  # updated_at
    submitted = datetime(2019, 5, 15, 15, 20, 38, tzinfo=UTC)
    assert from_pull_request_review(review).received_at == submitted


def test_a_received_time_without_a_time_zone_is_refused() -> None:
    payload = _on_a_pull_request(_examples("issue_comment")[0])
    with pytest.raises(ValidationError):
        from_issue_comment(payload, received_at=datetime(2026, 11, 24, 12, 0))


def test_slack_ids_belong_to_slack_events_only() -> None:
    fields = _event().model_dump(exclude={"slack_team_id", "slack_user_id"})
    slack = {**fields, "source": CommentSource.SLACK, "author_association": "NONE"}
    with pytest.raises(ValidationError):
        CommentEvent(**slack)
    ok = CommentEvent(**slack, slack_team_id="T0001", slack_user_id="U2147483697")
    assert ok.slack_user_id == "U2147483697"
    with pytest.raises(ValidationError):
        CommentEvent(**fields, slack_team_id="T0001", slack_user_id="U2147483697")


def test_an_event_cannot_be_changed_once_made() -> None:
    event = _event()
    with pytest.raises(ValidationError):
        event.body = "/approve"
