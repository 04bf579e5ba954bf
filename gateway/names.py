"""Names the gateway publishes and the bot reads: Prometheus metrics, labels, and the
prediction log's columns. One place, so the two sides cannot drift apart."""

from __future__ import annotations

# Prometheus metrics served on the gateway's /metrics (prometheus-client adds _total,
# _bucket, _sum and _count suffixes as usual).
REQUESTS = "shipyard_gateway_requests"  # Counter; labels: model, variant, version, outcome
LATENCY_SECONDS = "shipyard_gateway_latency_seconds"  # Histogram; labels: model, variant, version
SCORE = "shipyard_gateway_score"  # Histogram of the positive-class score; same labels
MIRROR_QUEUE_DEPTH = "shipyard_gateway_mirror_queue_depth"  # Gauge; labels: model
MIRROR_DROPPED = "shipyard_gateway_mirror_dropped"  # Counter; labels: model, reason
MIRRORED = "shipyard_gateway_mirrored"  # Counter; labels: model, version (requests enqueued)
# Counter; labels: reason (buffer_full, write_failed). Rows that never reached the log.
PREDICTION_LOG_DROPPED = "shipyard_gateway_prediction_log_dropped"

LABELS = ("model", "variant", "version")

# A request's variant: which routing slot answered (or, for shadow, was mirrored to).
VARIANT_PRODUCTION = "production"
VARIANT_CANARY = "canary"
VARIANT_SHADOW = "shadow"
VARIANTS = (VARIANT_PRODUCTION, VARIANT_CANARY, VARIANT_SHADOW)

# Outcomes of one request, for REQUESTS' `outcome` label.
OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"

# The prediction log: Parquet under <artifact store>/prediction-log/model=<m>/day=<YYYY-MM-DD>/
# variant=<v>/<file>.parquet (hive partitioning, readable by pandas and Dask).
PREDICTION_LOG_DIR = "prediction-log"
LOG_REQUEST_ID = "request_id"  # the same id for a production answer and its shadow mirror
LOG_VERSION = "version"
LOG_TIME = "time"  # UTC timestamp, microseconds
LOG_FEATURES = "features"  # JSON text of the request's feature row (column name -> value)
LOG_SCORE = "score"  # float: the positive-class score (null on error)
LOG_OUTPUTS = "outputs"  # JSON text of every output tensor
LOG_LATENCY_MS = "latency_ms"  # float
LOG_ERROR = "error"  # short fixed text, null when the request succeeded
LOG_COLUMNS = (
    LOG_REQUEST_ID,
    LOG_VERSION,
    LOG_TIME,
    LOG_FEATURES,
    LOG_SCORE,
    LOG_OUTPUTS,
    LOG_LATENCY_MS,
    LOG_ERROR,
)
# Partition columns (present when read back with hive partitioning): model, day, variant.
