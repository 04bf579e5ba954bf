"""On-call paging: the Pager port (PagerDuty Events API v2) and the outbox effect that sends
every page exactly once.

- `events.py`: pure; the `Page` and the trigger / acknowledge / resolve bodies, bounded to
  PagerDuty's limits.
- `pagerduty.py`: the `Pager` protocol and its real implementation over httpx, `PageRefused`
  (400: never retried) and `PagerUnavailable` (429, 5xx, no answer: retried by the outbox).
- `page_effect.py`: the outbox kind "page" and what the rollout calls: `trigger`,
  `acknowledge`, `resolve`.

Its loopback double is `bot/sandbox/pagerduty/`. See docs/paging.md.

May import: `bot.base`, `bot.store`, `bot.runtime`.
"""
