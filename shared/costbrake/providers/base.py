"""What every provider adapter gives the gateway: one upstream call and what it cost in tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from costbrake.usage import Usage

OPENAI = "openai"
ANTHROPIC = "anthropic"


@dataclass(frozen=True)
class UpstreamResult:
    status: int  # upstream HTTP status
    body: bytes  # returned to the client as is on success (a complete SSE body for streams)
    content_type: str
    usage: Usage | None  # None when the provider never reported usage (error, stream cut short)
    served_model: str | None
    finish_reason: str | None  # the provider's own words: "stop"/"length"/... or "end_turn"/"max_tokens"/...
    request_id: str | None  # upstream x-request-id / request-id

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ProviderAdapter(Protocol):
    name: str  # "openai" | "anthropic"
    path: str  # "/v1/chat/completions" | "/v1/messages"

    def upstream_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the client's body as sent upstream; unknown fields survive."""
        ...

    def call(
        self,
        body: Mapping[str, Any],
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        extra_headers: Mapping[str, str] | None = None,
    ) -> UpstreamResult:
        """POST ``upstream_body(body)`` and read the whole answer within ``timeout`` seconds.

        Raises ProviderTimeout / ProviderFailed when no answer arrives; a non-2xx answer is returned.
        """
        ...
