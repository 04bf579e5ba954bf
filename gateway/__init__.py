"""Pipeline step 3 and 5's serving side: the model gateway.

Serves registry models over the Open Inference Protocol v2, answers from production (or the
canary, by weight), mirrors to the shadow version off the request path, exposes Prometheus
metrics and writes the prediction log. It loads artifacts only through `evaluators.artifacts`
(ONNX, skops; never pickle).

May import: `evaluators`. Never `bot`: the bot drives the gateway through its routing table
and reads it through Prometheus and the prediction log.
"""
