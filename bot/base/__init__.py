"""Low-level helpers every other folder may use: the injected clock, polling waits, the worker
pool, the loopback server runner, capped request bodies, retry policy for idempotent reads,
logs and Prometheus metrics, and the operator's settings.

May import: the standard library and third-party packages only — nothing else of `bot/`,
`evaluators/` or `gateway/`.
"""
