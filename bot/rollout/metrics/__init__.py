"""Metrics sources: how the bot reads live traffic's numbers (requests, errors, latency, scores,
mirror coverage) for shadow and canary analysis.

`source.py` is the port (the `MetricsSource` protocol and its answers: a number, or `NoData`);
`queries.py` builds the PromQL from `gateway.names`; one file per implementation:
`prometheus.py` (Prometheus' HTTP API).
"""
