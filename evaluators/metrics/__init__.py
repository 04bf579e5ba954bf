"""The registry of metrics: pure functions of labels, scores and weights with keyword-only
options and a declared direction; the exact sums and rank statistics they are built from.

May import: the evaluators' vocabulary modules (`evaluators.candidate`, `evaluators.errors`,
`evaluators.report`) only.
"""
