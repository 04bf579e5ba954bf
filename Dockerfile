# syntax=docker/dockerfile:1
# Shipyard bot: `shipyard serve` (migrations run at start), non-root, with a health check.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY evaluators ./evaluators
COPY report_templates ./report_templates
# bot/demo_fixtures links into fixtures/: the wheel carries the demo's fixtures (about 11 MB)
COPY fixtures ./fixtures
RUN python -m venv /opt/shipyard \
 && /opt/shipyard/bin/pip install --upgrade pip \
 && /opt/shipyard/bin/pip install .

FROM python:3.11-slim
RUN groupadd --system shipyard && useradd --system --gid shipyard --home /app shipyard \
 && mkdir -p /app /data && chown shipyard:shipyard /app /data
COPY --from=build /opt/shipyard /opt/shipyard
ENV PATH=/opt/shipyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SHIPYARD_DATABASE_URL=sqlite:////data/shipyard.db
WORKDIR /app
USER shipyard
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["shipyard", "serve", "--host", "0.0.0.0", "--port", "8000"]
