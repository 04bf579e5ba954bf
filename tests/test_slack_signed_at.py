"""When a Slack user acted: the signed request timestamp, read defensively."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from slack_bolt.request import BoltRequest

from bot.slack.commands import signed_at


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"X-Slack-Request-Timestamp": "1764095400"}, datetime(2025, 11, 25, 18, 30, tzinfo=UTC)),
        ({}, None),
        ({"X-Slack-Request-Timestamp": "soon"}, None),
        ({"X-Slack-Request-Timestamp": "9" * 40}, None),
    ],
    ids=[
        "a signed timestamp is the moment the person acted",
        "no timestamp binds to no head",
        "a timestamp that is not a number binds to no head",
        "a timestamp beyond any calendar binds to no head",
    ],
)
def test_the_moment_a_slack_user_acted(headers: dict[str, str], expected: datetime | None) -> None:
    assert signed_at(BoltRequest(body="", headers=headers)) == expected
