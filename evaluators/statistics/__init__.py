"""Candidate against production on the same rows: paired comparisons, intervals, multiple
testing, calibration, segments.

May import: the vocabulary modules, `evaluators.metrics`, `evaluators.policy`.
"""
