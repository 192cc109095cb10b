"""Upstream provider adapters: forward a client's body, read the whole answer, report its usage."""

from __future__ import annotations

from costbrake.providers.anthropic_messages import AnthropicMessagesAdapter, parse_anthropic_sse
from costbrake.providers.base import ProviderAdapter, UpstreamResult
from costbrake.providers.openai_chat import OpenAIChatAdapter, parse_openai_sse

_ADAPTERS: dict[str, ProviderAdapter] = {
    OpenAIChatAdapter.name: OpenAIChatAdapter(),
    AnthropicMessagesAdapter.name: AnthropicMessagesAdapter(),
}


def adapter_for(provider: str) -> ProviderAdapter:
    try:
        return _ADAPTERS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; expected one of {sorted(_ADAPTERS)}") from None


__all__ = [
    "AnthropicMessagesAdapter",
    "OpenAIChatAdapter",
    "ProviderAdapter",
    "UpstreamResult",
    "adapter_for",
    "parse_anthropic_sse",
    "parse_openai_sse",
]
