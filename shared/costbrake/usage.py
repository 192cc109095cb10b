"""Provider-neutral token usage of one call, as billed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """Token counts split by how each is billed, plus the other billed dimensions of a call.

    ``input_tokens`` are uncached input tokens billed at the input rate (for OpenAI this is
    ``prompt_tokens - cached_tokens``; Anthropic's ``input_tokens`` already excludes cache).
    ``output_tokens`` include reasoning tokens (both providers bill them as output);
    ``reasoning_tokens`` is informational.  ``total_input_tokens`` is what decides a
    long-context tier.

    ``service_tier`` is the tier the response reports, normalised by ``costbrake.pricing.billed_tier``:
    ``"standard"``, ``"priority"``, ``"flex"``, ``"batch"``, or the provider's own word for a tier the
    price table does not know (priced at the model's dearest tier). None means the response named no tier:
    standard. ``web_search_requests`` counts the server-side web searches the provider bills per use.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False  # True when the provider never reported usage
    service_tier: str | None = None
    web_search_requests: int = 0

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_5m_tokens + self.cache_write_1h_tokens
