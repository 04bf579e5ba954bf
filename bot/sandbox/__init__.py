"""Loopback doubles of the outside systems, speaking their real wire protocols: `github/` (a
GitHub served from its published OpenAPI description, with real webhook examples), `slack/`,
and `pagerduty/` (the Events API v2, with PagerDuty's validation and de-duplication).

Used by tests and `shipyard demo`; production code never imports them. May import `bot.base`
only.
"""
