"""Slack request signatures: Slack's published example is a test vector for both sides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.base.clock import ManualClock
from bot.sandbox.slack.signing import sign
from bot.slack.signatures import signature_verifier

# From Slack's "Verifying requests from Slack" guide. The token in the body is
# `xyzz0WbapA4vBCDEFasx0q6G`, as Slack publishes it; with any other token the signature differs.
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TIMESTAMP = "1531420618"
BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect"
    b"&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554"
    b"%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
EXPECTED = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SIGNED_AT = datetime.fromtimestamp(int(TIMESTAMP), tz=UTC)


def test_the_test_double_signs_the_published_example_as_slack_does() -> None:
    assert sign(SECRET, timestamp=TIMESTAMP, body=BODY) == EXPECTED


@pytest.mark.parametrize(
    "age, secret, body, signature, valid",
    [
        (timedelta(0), SECRET, BODY, EXPECTED, True),
        (timedelta(minutes=5), SECRET, BODY, EXPECTED, True),
        (timedelta(minutes=5, seconds=1), SECRET, BODY, EXPECTED, False),
        (timedelta(minutes=-6), SECRET, BODY, EXPECTED, False),
        (timedelta(0), "another-signing-secret", BODY, EXPECTED, False),
        (timedelta(0), SECRET, BODY.replace(b"text=", b"text=approve"), EXPECTED, False),
        (timedelta(0), SECRET, BODY, EXPECTED.replace("v0=", "v1="), False),
        (timedelta(0), SECRET, BODY, "", False),
    ],
    ids=[
        "the published example is accepted when it is fresh",
        "a request exactly five minutes old is still accepted",
        "a request older than five minutes is refused",
        "a request from the future is refused",
        "another app's secret does not verify it",
        "a changed body does not verify",
        "another signature version is refused",
        "a missing signature is refused",
    ],
)
def test_the_bot_verifies_with_its_own_clock(
    age: timedelta, secret: str, body: bytes, signature: str, valid: bool
) -> None:
    verifier = signature_verifier(signing_secret=secret, clock=ManualClock(SIGNED_AT + age))
    assert verifier.is_valid(body, TIMESTAMP, signature) is valid
