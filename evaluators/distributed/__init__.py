"""Evaluation on a Dask cluster: a partitioned benchmark, inference and the mergeable statistics
on the workers, the same report as the local engine. See docs/distributed-evaluation.md.

manifest: the pinned list of partitions. cluster: reaching the operator's scheduler.
partition_tasks: what runs on a worker. engine: the two passes and their merges.
comparison: merged statistics -> the report's sections. run: one evaluation end to end.
"""
