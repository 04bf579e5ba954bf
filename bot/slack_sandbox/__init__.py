"""A loopback Slack for tests and the demo: the Web API, response_url hooks, and signed requests."""

from bot.slack_sandbox.people import SlackPeople, SlackUser
from bot.slack_sandbox.server import SlackSandboxServer
from bot.slack_sandbox.signing import sign
from bot.slack_sandbox.state import SlackState

__all__ = ["SlackPeople", "SlackSandboxServer", "SlackState", "SlackUser", "sign"]
