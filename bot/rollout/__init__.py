"""Pipeline steps 3 and 5 (shadow traffic, canary, rollback) and their ports: traffic routers
and metrics sources, one folder per port with one file per implementation.

May import: `bot.base`, `bot.store`, `bot.github`, `bot.runtime`, `bot.promotion`,
`evaluators`, `gateway`.
"""
