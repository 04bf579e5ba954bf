"""The human-readable report: HTML with plots.

May import: the vocabulary modules, `evaluators.metrics`, `evaluators.policy`,
`evaluators.statistics`, `evaluators.judgement`.
"""
