"""A loopback Slack for tests and the demo: the Web API, response_url hooks, and signed requests."""

from bot.sandbox.slack.people import SlackPeople, SlackUser
from bot.sandbox.slack.server import SlackSandboxServer
from bot.sandbox.slack.signing import sign
from bot.sandbox.slack.state import SlackState

__all__ = ["SlackPeople", "SlackSandboxServer", "SlackState", "SlackUser", "sign"]
