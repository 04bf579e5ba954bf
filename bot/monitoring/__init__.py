"""Production monitoring after a rollout: scheduled drift and data-quality checks on the
prediction log, judged by effect size.

May import what `bot.rollout` may, and `bot.rollout`.
"""
