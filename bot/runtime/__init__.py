"""The durable machinery every stage runs on: the bot context, the webhook front door (verify,
persist, acknowledge), the inbox of deliveries, leases with heartbeats, the outbox of effects
that makes every write happen exactly once, and retention.

May import: `bot.base`, `bot.store`, `bot.github`, `evaluators`.
"""
