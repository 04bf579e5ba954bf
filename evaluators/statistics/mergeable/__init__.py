"""Exact statistics from partial results that merge by addition (for a partitioned benchmark).

counts: count tables -> exact AUC. placements: pass-2 DeLong moments. sums: Brier, log loss,
calibration bins. regression: MAE, RMSE, R² from exact sums. bootstrap: Poisson weights hashed
from (row id, replicate). evaluation: the two passes over one partition, and the merge. See
docs/distributed-evaluation.md.
"""
