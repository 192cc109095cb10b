"""Provider API keys: from settings locally, from Secrets Manager in AWS (read on first use, not at init)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from costbrake.config import Settings
from costbrake.errors import ProviderKeyUnavailable
from costbrake.providers.base import ANTHROPIC, OPENAI

# A rotated secret is seen within this long; a failed read is tried again on the next call.
KEY_REFRESH_SECONDS = 300.0


class ProviderKeys:
    def __init__(self, settings: Settings, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._monotonic = monotonic
        self._keys: dict[str, str] | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def key_for(self, provider: str) -> str:
        """The provider's key; ProviderKeyUnavailable (503) when none is configured or the secret cannot be read.

        Called before anything is reserved, so a missing key costs the caller nothing.
        """
        with self._lock:
            if self._keys is None or self._monotonic() - self._loaded_at >= KEY_REFRESH_SECONDS:
                self._keys = self._load()
                self._loaded_at = self._monotonic()
            keys = self._keys
        try:
            return keys[provider]
        except KeyError:
            raise ProviderKeyUnavailable(f"No {provider} API key is configured for this gateway.") from None

    def _load(self) -> dict[str, str]:
        settings = self._settings
        keys = {
            name: secret.get_secret_value()
            for name, secret in ((OPENAI, settings.openai_api_key), (ANTHROPIC, settings.anthropic_api_key))
            if secret is not None
        }
        if settings.provider_secret_arn:
            keys.update(_secret_keys(settings))
        return keys


def _secret_keys(settings: Settings) -> dict[str, str]:
    import boto3  # only on the first provider call of a container that uses Secrets Manager
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("secretsmanager", region_name=settings.aws_region)
        stored = json.loads(client.get_secret_value(SecretId=settings.provider_secret_arn)["SecretString"])
    except (BotoCoreError, ClientError, ValueError, KeyError) as error:
        # The secret's name and the error code only: never the secret's value.
        code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
        raise ProviderKeyUnavailable(f"The provider key secret could not be read ({code}).") from None
    if not isinstance(stored, dict):
        raise ProviderKeyUnavailable("The provider key secret is not a JSON object.")
    return {name: stored[f"{name}_api_key"] for name in (OPENAI, ANTHROPIC) if stored.get(f"{name}_api_key")}
