"""What every provider adapter gives the gateway: one upstream call and what it cost in tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from costbrake.usage import Usage

if TYPE_CHECKING:
    from costbrake.providers.transport import RawResponse

OPENAI = "openai"
ANTHROPIC = "anthropic"

# The provider APIs the gateway serves, one adapter each (``costbrake.providers.adapter_for``).
CHAT_COMPLETIONS = "openai.chat"
RESPONSES = "openai.responses"
EMBEDDINGS = "openai.embeddings"
MESSAGES = "anthropic.messages"
COUNT_TOKENS = "anthropic.count_tokens"


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
    """What the gateway needs to know of one provider API: how to call it and how to read its answers."""

    name: str  # the provider: "openai" | "anthropic"
    api: str  # CHAT_COMPLETIONS, RESPONSES, EMBEDDINGS, MESSAGES, COUNT_TOKENS
    path: str  # "/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages", ...
    modes: tuple[str, ...]  # the price table modes (``costbrake.pricing.MODES``) of the models it serves

    def upstream_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the client's body as sent upstream; unknown fields survive."""
        ...

    def upstream_headers(self, api_key: str, extra_headers: Mapping[str, str] | None) -> dict[str, str]: ...

    def result(self, raw: RawResponse, client_body: Mapping[str, Any]) -> UpstreamResult:
        """A complete answer (JSON, or a whole event stream) with its usage; the body as the client gets it."""
        ...

    def relays(self, event: bytes, client_body: Mapping[str, Any]) -> bool:
        """Whether one event of a stream goes on to the client."""
        ...

    def streamed_output_bytes(self, body: bytes) -> int:
        """UTF-8 bytes of output in a (partial) event stream: at least its output tokens."""
        ...
