"""The reconciler's settings (env prefix ``COSTBRAKE_``), validated once; off until an admin key is configured."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from costbrake.providers.base import ANTHROPIC, OPENAI
from costbrake.reconcile.compare import VariancePolicy


class AdminKeysUnavailable(Exception):
    """The admin-key secret could not be read (the message names the error code, never the secret)."""


class ReconcileSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COSTBRAKE_", frozen=True, extra="ignore")

    # The admin keys: a Secrets Manager secret, by name or ARN (JSON {"openai_admin_key": ..., "anthropic_admin_key":
    # ...}) in AWS,
    # or the two variables below locally. Read-only use: the usage and cost reports, nothing else.
    admin_secret_id: str | None = None
    openai_admin_key: SecretStr | None = None
    anthropic_admin_key: SecretStr | None = None
    openai_admin_base_url: str = "https://api.openai.com"
    anthropic_admin_base_url: str = "https://api.anthropic.com"
    # Narrow the reports to the project / workspaces the gateway's provider keys live in (empty: the organisation).
    openai_project_ids: list[str] = []
    anthropic_workspace_ids: list[str] = []
    # The admin APIs' ids of the gateway's own provider keys: unguarded spend then says whether it was on them.
    openai_gateway_key_ids: list[str] = []
    anthropic_gateway_key_ids: list[str] = []

    reconcile_days: int = Field(default=7, ge=1, le=31)
    reconcile_threshold_pct: Decimal = Field(default=Decimal(1), gt=0, le=100)
    reconcile_floor_usd: Decimal = Field(default=Decimal(1), ge=0)
    reconcile_unguarded_floor_usd: Decimal = Field(default=Decimal(1), gt=0)
    reconcile_final_after_hours: int = Field(default=24, ge=0, le=24 * 7)
    admin_timeout_seconds: float = Field(default=30.0, gt=0, le=300)

    @field_validator("admin_secret_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("openai_admin_key", "anthropic_admin_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def configured(self) -> bool:
        """Whether any admin key is configured: without one the feature is off."""
        return bool(self.admin_secret_id or self.openai_admin_key or self.anthropic_admin_key)

    def policy(self) -> VariancePolicy:
        return VariancePolicy(
            threshold_fraction=self.reconcile_threshold_pct / 100,
            floor_usd=self.reconcile_floor_usd,
            unguarded_floor_usd=self.reconcile_unguarded_floor_usd,
            final_after=timedelta(hours=self.reconcile_final_after_hours),
        )

    def gateway_key_ids(self, provider: str) -> frozenset[str]:
        return frozenset(self.openai_gateway_key_ids if provider == OPENAI else self.anthropic_gateway_key_ids)

    def admin_keys(self, region: str) -> dict[str, str]:
        """Provider → admin key: the environment's, then the secret's (which wins). Raises AdminKeysUnavailable."""
        keys = {
            name: secret.get_secret_value()
            for name, secret in ((OPENAI, self.openai_admin_key), (ANTHROPIC, self.anthropic_admin_key))
            if secret is not None and secret.get_secret_value()
        }
        if self.admin_secret_id:
            keys.update(_secret_keys(self.admin_secret_id, region))
        return keys


def _secret_keys(secret_id: str, region: str) -> dict[str, str]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("secretsmanager", region_name=region)
        stored = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
    except (BotoCoreError, ClientError, ValueError, KeyError) as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
        raise AdminKeysUnavailable(f"The admin-key secret could not be read ({code}).") from None
    if not isinstance(stored, dict):
        raise AdminKeysUnavailable("The admin-key secret is not a JSON object.")
    found = {name: stored.get(f"{name}_admin_key") for name in (OPENAI, ANTHROPIC)}
    return {name: key for name, key in found.items() if isinstance(key, str) and key}
