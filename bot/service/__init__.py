"""The running process: the FastAPI app factory, dispatch of stored deliveries to handlers, the
inbox and outbox workers, the scheduler tick, health and readiness, and the report route.

May import everything in `bot/` except `bot.cli` and `bot.sandbox`.
"""
