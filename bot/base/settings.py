"""Runtime settings: one pydantic-settings model, built by `load_settings()`, never at import."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB and drops larger ones

_PLACEHOLDERS = re.compile(
    r"^\s*$|^(change[-_ ]?me|changeit|secret|password|placeholder|todo|xxx+|example|test|"
    r"your[-_ ].*|<.*>|\$\{.*\}|\.\.\.)$",
    re.IGNORECASE,
)


class SettingsError(ValueError):
    """Settings are missing or unsafe; the message never contains a secret value."""


def _refuse_placeholder(name: str, value: SecretStr | None) -> None:
    if value is not None and _PLACEHOLDERS.match(value.get_secret_value()):
        raise ValueError(f"{name} is empty or a placeholder; set a real secret")


class Settings(BaseSettings):
    """Everything the bot is configured with. Secrets are SecretStr: they never print."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore", frozen=True)

    github_app_id: int = Field(gt=0)
    github_private_key: SecretStr | None = None
    github_private_key_path: Path | None = None
    github_webhook_secret: SecretStr
    github_webhook_secret_previous: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    database_url: str = "sqlite:///./shipyard.db"
    public_url: str = "http://localhost:8000"
    worker_threads: int = Field(default=2, ge=1, le=32)
    run_workers: bool = Field(
        default=True,
        description="Handle stored deliveries, evaluations and deadlines in this process; "
        "false makes `serve` intake-only (run `shipyard work` beside it on the same database).",
    )
    evaluation_workers: int = Field(default=1, ge=0, le=16)
    benchmark_dir: Path = Field(
        default=Path("."), description="Where relative benchmark URIs in policies resolve."
    )
    benchmark_roots: list[str] = Field(
        default_factory=list,
        description="Where benchmarks may be read from: local directories, https://host/path/, "
        "s3://bucket/prefix/. Empty means benchmark_dir only.",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="host:port (tcp://) of the Dask scheduler for policies with "
        "statistics.engine: dask; unset, such evaluations fail.",
    )
    cache_dir: Path | None = Field(
        default=None, description="Model outputs reused across identical evaluations."
    )
    artifact_audit_memory_mb: int = Field(
        default=8192,
        ge=256,
        description="Address space of the process that parses the PRs' artifacts (audit_process).",
    )
    scheduler_tick_s: float = Field(default=15, gt=0, description="How often deadlines are due.")
    max_github_retries: int = Field(default=4, ge=0, le=10)
    max_retry_wait_s: float = Field(default=900, gt=0)
    github_timeout_s: float = Field(
        default=30, gt=0, le=300, description="How long one GitHub request may take."
    )
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$", description="json | text")
    lease_s: float = Field(default=30, gt=0, le=600, description="How long a claim lasts alone.")
    lease_heartbeat_s: float = Field(default=10, gt=0, description="How often a claim is renewed.")
    shutdown_grace_s: float = Field(default=30, ge=0, description="Wait for running work at stop.")
    # The internet-facing front door (see docs/security.md).
    max_body_bytes_in_flight: int = Field(
        default=100 * 1024 * 1024,
        ge=1024 * 1024,
        description="Unauthenticated request bodies held in memory at once; beyond it, 503.",
    )
    delivery_retention_days: int = Field(
        default=14, ge=1, description="Handled deliveries and Slack request hashes kept this long."
    )
    audit_retention_days: int = Field(
        default=400, ge=1, description="Audit rows (who did what) kept this long."
    )
    report_link_ttl_days: int = Field(
        default=90, ge=1, description="A /reports/{id} bearer link stops working after this."
    )
    api_docs: bool = Field(
        default=False, description="Serve /docs, /redoc and /openapi.json (off on the internet)."
    )
    # Slack is optional: without both of these the bot runs and Slack is simply off.
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_command: str = Field(default="/shipyard", description="The slash command's name.")
    slack_command_aliases: list[str] = Field(
        default_factory=lambda: ["/approve", "/block"],
        description="Extra slash commands that mean `/shipyard <name> …`.",
    )

    # Shadow traffic (pipeline step 3) is on when a staging gateway's artifact store and routing
    # table are given; without them a policy that requires shadow waits for a person.
    shadow_artifact_store: str | None = Field(
        default=None,
        description="fsspec location the staging gateways load models from and log to "
        "(a directory, s3://bucket/prefix).",
    )
    shadow_routing_table: Path | None = Field(
        default=None, description="The routing table file the staging gateways poll."
    )
    shadow_nginx: Path | None = Field(
        default=None,
        description="An nginx router file (YAML: directory, listen_port, upstreams; see "
        "docs/routing.md): nginx splits and mirrors in front of the staging gateways, which "
        "run with --behind-router. Read at every stage visit.",
    )
    shadow_gateway_url: str | None = Field(
        default=None, description="The staging gateway's public URL, linked from deployments."
    )
    shadow_prometheus_url: str | None = Field(
        default=None,
        description="Prometheus scraping the staging gateways; without it shadow latency comes "
        "from the prediction log.",
    )
    shadow_check_interval_s: float = Field(
        default=900, gt=0, description="How often a running shadow stage is judged again."
    )

    # The canary (pipeline step 5) is on when the production gateway's artifact store and
    # routing table are given; without them a merge ends the bot's part, as before.
    canary_artifact_store: str | None = Field(
        default=None,
        description="fsspec location the production gateways load models from and log to.",
    )
    canary_routing_table: Path | None = Field(
        default=None, description="The routing table file the production gateways poll."
    )
    canary_nginx: Path | None = Field(
        default=None,
        description="As SHIPYARD_SHADOW_NGINX, for nginx in front of the production gateways.",
    )
    canary_gateway_url: str | None = Field(
        default=None, description="The production gateway's public URL, linked from deployments."
    )
    canary_prometheus_url: str | None = Field(
        default=None,
        description="Prometheus scraping the production gateways; without it the canary reads "
        "the gateways' prediction log (and business metrics, which are PromQL, have no data).",
    )
    canary_check_interval_s: float = Field(
        default=60,
        gt=0,
        description="How often a running canary is looked at (analyses run "
        "every canary.analysis_interval_minutes of the policy).",
    )
    monitor_grace_s: float = Field(
        default=120,
        ge=0,
        description="Seconds after a monitoring window ends before it is judged, so that every "
        "gateway has written that window's prediction log.",
    )
    # On-call: PagerDuty Events API v2. Without a routing key pages are not sent (and the
    # rollout says so where it reports).
    pagerduty_events_url: str = "https://events.pagerduty.com"
    pagerduty_routing_key: SecretStr | None = None

    @property
    def canary_enabled(self) -> bool:
        return self.canary_artifact_store is not None and self.canary_routing_table is not None

    @property
    def monitoring_enabled(self) -> bool:
        """Production monitoring reads the production gateways' prediction log."""
        return self.canary_enabled

    @property
    def shadow_enabled(self) -> bool:
        return self.shadow_artifact_store is not None and self.shadow_routing_table is not None

    def allowed_benchmark_roots(self) -> list[str]:
        """The operator's benchmark roots; by default only `benchmark_dir`."""
        return list(self.benchmark_roots) or [str(self.benchmark_dir)]

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None

    @field_validator("github_api_url", "public_url", "pagerduty_events_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _secrets_are_real(self) -> Settings:
        _refuse_placeholder("SHIPYARD_GITHUB_WEBHOOK_SECRET", self.github_webhook_secret)
        _refuse_placeholder(
            "SHIPYARD_GITHUB_WEBHOOK_SECRET_PREVIOUS", self.github_webhook_secret_previous
        )
        _refuse_placeholder("SHIPYARD_GITHUB_PRIVATE_KEY", self.github_private_key)
        _refuse_placeholder("SHIPYARD_SLACK_BOT_TOKEN", self.slack_bot_token)
        _refuse_placeholder("SHIPYARD_SLACK_SIGNING_SECRET", self.slack_signing_secret)
        _refuse_placeholder("SHIPYARD_PAGERDUTY_ROUTING_KEY", self.pagerduty_routing_key)
        if self.github_private_key is None and self.github_private_key_path is None:
            raise ValueError("set SHIPYARD_GITHUB_PRIVATE_KEY or SHIPYARD_GITHUB_PRIVATE_KEY_PATH")
        return self

    def private_key_pem(self) -> str:
        """The App's private key, checked to be an RSA PEM without echoing it."""
        if self.github_private_key is not None:
            pem = self.github_private_key.get_secret_value()
        else:
            assert self.github_private_key_path is not None
            try:
                pem = self.github_private_key_path.read_text()
            except OSError as exc:
                raise SettingsError(
                    f"cannot read SHIPYARD_GITHUB_PRIVATE_KEY_PATH ({exc.strerror})"
                ) from None
        pem = pem.replace("\\n", "\n").strip() + "\n"
        from bot.base.private_keys import parsed_private_key

        try:
            parsed_private_key(pem)
        except (ValueError, TypeError):
            raise SettingsError("the GitHub App private key is not a valid PEM key") from None
        return pem

    def webhook_secrets(self) -> list[bytes]:
        """Current secret first, then the previous one while a rotation is under way."""
        out = [self.github_webhook_secret.get_secret_value().encode()]
        if self.github_webhook_secret_previous is not None:
            out.append(self.github_webhook_secret_previous.get_secret_value().encode())
        return out


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (and overrides); errors never show secret values."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            field = "SHIPYARD_" + "_".join(str(p) for p in err["loc"]).upper()
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{field}: {msg}" if err["loc"] else msg)
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None
    settings.private_key_pem()
    return settings
