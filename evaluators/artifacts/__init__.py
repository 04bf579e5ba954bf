"""Everything that touches a model artifact or benchmark bytes: safe loading (ONNX, skops; never
pickle), inference in a limited worker process, latency measurement, benchmark data, the
prediction cache.

May import: the vocabulary modules, `evaluators.metrics`, `evaluators.policy`.
"""
