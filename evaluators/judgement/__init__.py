"""Turning evidence into a decision: the verdict, the trust checks on the author's claims, the
fingerprint of what was evaluated.

May import: the vocabulary modules, `evaluators.metrics`, `evaluators.policy`,
`evaluators.artifacts`, `evaluators.statistics`.
"""
