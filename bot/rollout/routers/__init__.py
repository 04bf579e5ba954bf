"""Traffic routers: how the bot moves live traffic between a model's versions.

`router.py` is the port (the `TrafficRouter` protocol); one file per implementation:
`gateway.py` (the embedded default: the routing table Shipyard's gateways poll) and `nginx.py`
(`split_clients` + `mirror` in front of per-version gateways).
"""
