"""Settings validated once at cold start. Logic receives a Settings object; it never reads the environment."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COSTBRAKE_", frozen=True, extra="ignore", populate_by_name=True)

    ledger_table: str = Field(min_length=3)
    calls_table: str = Field(min_length=3)
    # Response cache (features with cache exact/semantic); None: no cache table, the reducers are off.
    cache_table: str | None = Field(default=None, min_length=3)
    # Semantic entries kept per (feature, model, system prompt, parameters): a search reads at most this many.
    cache_semantic_entries: int = Field(default=200, ge=1, le=1000)
    # The embeddings model of the semantic cache (an OpenAI one; its calls are charged to the feature) and the
    # dimensions asked of it: fewer dimensions, less to store and compare (text-embedding-3-* shorten well).
    cache_embedding_model: str = Field(default="text-embedding-3-small", min_length=1)
    cache_embedding_dimensions: int = Field(default=512, ge=16, le=4096)
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("COSTBRAKE_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    # Local stack / tests point DynamoDB at moto's server; unset in AWS.
    dynamodb_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "COSTBRAKE_DYNAMODB_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"
        ),
    )

    # Upstreams. Keys come from env locally; in AWS from Secrets Manager (provider_secret_arn).
    openai_base_url: str = "https://api.openai.com"
    anthropic_base_url: str = "https://api.anthropic.com"
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    provider_secret_arn: str | None = None
    alert_topic_arn: str | None = None  # the SNS topic of alerts (pipeline functions)

    # Time limits nest: a provider call (idle gap and total) ends before the streaming integration (API Gateway
    # REST streaming: 15 minutes) and the Lambda give up, and the Lambda ends before the sweeper may release its
    # reservation. So a call always settles or refunds, and a reservation is swept only when nothing can settle it.
    provider_idle_timeout_seconds: float = Field(default=60.0, gt=0)  # longest gap between two upstream bytes
    provider_timeout_seconds: float = Field(default=840.0, gt=0)  # a whole upstream call, stream included
    integration_timeout_seconds: float = Field(default=900.0, gt=0, le=900)
    lambda_timeout_seconds: float = Field(default=900.0, gt=0, le=900)
    reservation_ttl_seconds: int = Field(default=960, gt=0)

    # How long a warm container trusts its cached keys/users/settings (a switch flip lands within this).
    settings_cache_seconds: float = Field(default=5.0, ge=0)

    # Defaults for requests, users and features without their own configuration (DESIGN's defaults).
    default_max_input_tokens: int = Field(default=32_000, gt=0)
    default_max_output_tokens: int = Field(default=4_096, gt=0)
    default_user_hour_usd: Decimal = Field(default=Decimal("1"), ge=0)
    default_user_day_usd: Decimal = Field(default=Decimal("5"), ge=0)
    default_user_month_usd: Decimal = Field(default=Decimal("50"), ge=0)
    default_user_rpm: int = Field(default=20, ge=0)
    global_month_usd: Decimal = Field(default=Decimal("1000"), ge=0)
    global_shards: int = Field(default=8, ge=1, le=1000)
    default_feature_shards: int = Field(default=8, ge=1, le=1000)

    # Downgrade: a feature switched to "downgrade" is served by the cheaper model of the same provider.
    # Keys are model families: a dated snapshot (gpt-4o-2024-05-13) is downgraded as its base is
    # (costbrake.pricing.downgrade_target).
    downgrade_map: dict[str, str] = {
        "claude-opus-4-8": "claude-sonnet-4-6",
        "claude-opus-4-7": "claude-sonnet-4-6",
        "claude-opus-4-6": "claude-sonnet-4-6",
        "claude-opus-4-5": "claude-sonnet-4-6",
        "claude-opus-4-1": "claude-sonnet-4-6",
        "claude-sonnet-4-6": "claude-haiku-4-5",
        "claude-sonnet-4-5": "claude-haiku-4-5",
        "claude-sonnet-4": "claude-haiku-4-5",
        "gpt-5.5": "gpt-5.4",
        "gpt-5.4": "gpt-5.4-mini",
        "gpt-5.2": "gpt-5-mini",
        "gpt-5.1": "gpt-5-mini",
        "gpt-5": "gpt-5-mini",
        "gpt-5-mini": "gpt-5-nano",
        "gpt-4.1": "gpt-4.1-mini",
        "gpt-4o": "gpt-4o-mini",
        "o1": "o4-mini",
        "o3": "o4-mini",
    }
    # model "auto" + X-Costbrake-Complexity: simple → haiku-class, complex → sonnet-class, critical → opus-class.
    auto_models: dict[str, dict[str, str]] = {
        "anthropic": {
            "simple": "claude-haiku-4-5",
            "complex": "claude-sonnet-4-6",
            "critical": "claude-opus-4-6",
        },
        "openai": {"simple": "gpt-5-mini", "complex": "gpt-5.4", "critical": "gpt-5.5"},
    }

    # Anomaly rules and automatic actions (DESIGN's defaults); the other thresholds are in pipeline.anomaly.
    anomaly_zscore: Decimal = Field(default=Decimal(3), gt=0)
    anomaly_user_share_of_daily_budget: Decimal = Field(default=Decimal("0.01"), gt=0, le=1)
    anomaly_growth_alert_pct: int = Field(default=50, gt=0)
    downgrade_at_pct: int = Field(default=95, ge=1, le=100)  # a budget at this share switches features to downgrade
    switch_off_at_pct: dict[str, int] = {}  # feature -> budget share (%) at which it is switched off
    block_on_user_spike: bool = True
    block_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)

    # A call refused only because calls in flight hold its budget's room waits this long for them to settle
    # before a retryable 429 (a spent budget is refused at once).
    budget_wait_seconds: float = Field(default=2.0, ge=0, le=10)
    # The tier a request that names none (or "auto") is served at, per provider: OpenAI's project default
    # ("default", or "priority" for a project set to it); Anthropic's "standard", or "priority" for an
    # organisation with Priority Tier capacity. Reservations price it; settlement uses the tier reported.
    auto_service_tiers: dict[str, str] = {"openai": "default", "anthropic": "standard"}

    # Hard ceiling on a request body (API Gateway's own payload limit is 10 MB).
    max_body_bytes: int = Field(default=6_000_000, gt=0)

    # Bounded, jittered retry of TransactionConflict / throttling.
    # A settle gets settle_attempt_factor times as many tries: the provider has answered and the money is spent.
    transaction_attempts: int = Field(default=10, ge=1, le=50)
    settle_attempt_factor: int = Field(default=3, ge=1, le=10)
    transaction_backoff_base_seconds: float = Field(default=0.01, gt=0)
    transaction_backoff_cap_seconds: float = Field(default=0.2, gt=0)

    @model_validator(mode="after")
    def _auto_tiers_known(self) -> Settings:
        known = {"openai": {"default", "priority", "flex"}, "anthropic": {"standard", "priority"}}
        if self.auto_service_tiers.keys() != known.keys():
            raise ValueError(f"auto_service_tiers needs exactly the providers {sorted(known)}")
        for provider, tier in self.auto_service_tiers.items():
            if tier not in known[provider]:
                raise ValueError(f"auto_service_tiers[{provider}] must be one of {sorted(known[provider])}")
        return self

    @model_validator(mode="after")
    def _time_limits_nest(self) -> Settings:
        nested = [
            ("provider_idle_timeout_seconds", "provider_timeout_seconds"),
            ("provider_timeout_seconds", "integration_timeout_seconds"),
            ("provider_timeout_seconds", "lambda_timeout_seconds"),
            ("lambda_timeout_seconds", "reservation_ttl_seconds"),
            ("integration_timeout_seconds", "reservation_ttl_seconds"),
        ]
        for inner_name, outer_name in nested:
            inner, outer = float(getattr(self, inner_name)), float(getattr(self, outer_name))
            if not inner < outer:
                raise ValueError(f"{inner_name} ({inner:g}) must be less than {outer_name} ({outer:g})")
        return self


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's settings, read from the environment once (cold start)."""
    return Settings()  # type: ignore[call-arg]


class LocalStackSettings(BaseSettings):
    """`costbrake local`: the developer's own provider keys, if set (otherwise the mock provider serves)."""

    model_config = SettingsConfigDict(extra="ignore")

    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")

    def provider_keys(self) -> dict[str, str]:
        keys = {"openai": self.openai_api_key, "anthropic": self.anthropic_api_key}
        return {name: key.get_secret_value() for name, key in keys.items() if key and key.get_secret_value()}
