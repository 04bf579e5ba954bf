"""Pipeline steps 1, 2 and 4: the registration gate, the evaluation queue and worker, the gate
decision (pure), authorisation (pure), the audit trail, the review window's deadlines, the check
runs and the one report comment, and the pinned auto-merge.

May import: `bot.base`, `bot.store`, `bot.github`, `bot.runtime`, `evaluators`.
`gate_decision`, `authorization` and `promotion_state`'s rules are pure: no I/O.
"""
