"""Upstream provider adapters, one per provider API: forward a client's body, read the answer, report its usage."""

from __future__ import annotations

from costbrake.providers.anthropic_messages import (
    AnthropicCountTokensAdapter,
    AnthropicMessagesAdapter,
    parse_anthropic_sse,
)
from costbrake.providers.base import (
    ANTHROPIC,
    CHAT_COMPLETIONS,
    MESSAGES,
    OPENAI,
    ProviderAdapter,
    UpstreamResult,
)
from costbrake.providers.openai_chat import OpenAIChatAdapter, parse_openai_sse
from costbrake.providers.openai_embeddings import OpenAIEmbeddingsAdapter
from costbrake.providers.openai_responses import OpenAIResponsesAdapter

_ADAPTERS: dict[str, ProviderAdapter] = {
    adapter.api: adapter
    for adapter in (
        OpenAIChatAdapter(),
        OpenAIResponsesAdapter(),
        OpenAIEmbeddingsAdapter(),
        AnthropicMessagesAdapter(),
        AnthropicCountTokensAdapter(),
    )
}
# A provider's name stands for its first API (callers written before the gateway served more than one each).
_PROVIDER_APIS = {OPENAI: CHAT_COMPLETIONS, ANTHROPIC: MESSAGES}


def adapter_for(api: str) -> ProviderAdapter:
    """The adapter of an API (``providers.base.RESPONSES`` …), or of a provider's chat API by its name."""
    try:
        return _ADAPTERS[_PROVIDER_APIS.get(api, api)]
    except KeyError:
        raise ValueError(f"unknown API {api!r}; expected one of {sorted(_ADAPTERS)}") from None


__all__ = [
    "AnthropicCountTokensAdapter",
    "AnthropicMessagesAdapter",
    "OpenAIChatAdapter",
    "OpenAIEmbeddingsAdapter",
    "OpenAIResponsesAdapter",
    "ProviderAdapter",
    "UpstreamResult",
    "adapter_for",
    "parse_anthropic_sse",
    "parse_openai_sse",
]
