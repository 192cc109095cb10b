"""Provider-neutral token usage of one call, as billed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """Token counts split by how each is billed.

    ``input_tokens`` are uncached input tokens billed at the input rate (for OpenAI this is
    ``prompt_tokens - cached_tokens``; Anthropic's ``input_tokens`` already excludes cache).
    ``output_tokens`` include reasoning tokens (both providers bill them as output);
    ``reasoning_tokens`` is informational.  ``total_input_tokens`` is what decides a
    long-context tier.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False  # True when the provider never reported usage

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_5m_tokens + self.cache_write_1h_tokens
