"""The ``Usage`` of a provider's response: OpenAI chat completions, Responses and embeddings, Anthropic Messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costbrake.pricing.service_tiers import billed_tier
from costbrake.usage import Usage


def usage_from_openai(usage: Mapping[str, Any], *, service_tier: Any = None, web_search_requests: int = 0) -> Usage:
    """Usage of a chat.completions response: ``prompt_tokens`` includes ``cached_tokens`` and
    ``completion_tokens`` includes ``reasoning_tokens``; absent or null details count as 0.

    ``service_tier`` is the completion's top-level field (it is not inside ``usage``); ``web_search_requests``
    the searches the caller knows were made (a search model searches once per request).
    """
    prompt_tokens = _count(usage, "prompt_tokens", required=True)
    completion_tokens = _count(usage, "completion_tokens", required=True)
    cached_tokens = _count(_details(usage, "prompt_tokens_details"), "cached_tokens")
    reasoning_tokens = _count(_details(usage, "completion_tokens_details"), "reasoning_tokens")
    if cached_tokens > prompt_tokens:
        raise ValueError(f"cached_tokens ({cached_tokens}) exceed prompt_tokens ({prompt_tokens})")
    if reasoning_tokens > completion_tokens:
        raise ValueError(f"reasoning_tokens ({reasoning_tokens}) exceed completion_tokens ({completion_tokens})")
    if isinstance(web_search_requests, bool) or not isinstance(web_search_requests, int) or web_search_requests < 0:
        raise ValueError(f"web_search_requests must be a non-negative integer, got {web_search_requests!r}")
    return Usage(
        input_tokens=prompt_tokens - cached_tokens,
        output_tokens=completion_tokens,
        cache_read_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
        service_tier=billed_tier(service_tier),
        web_search_requests=web_search_requests,
    )


def usage_from_openai_responses(
    usage: Mapping[str, Any], *, service_tier: Any = None, web_search_requests: int = 0
) -> Usage:
    """Usage of a Responses API response: ``input_tokens`` includes ``input_tokens_details.cached_tokens``,
    ``output_tokens`` includes ``output_tokens_details.reasoning_tokens`` (as chat completions, renamed).
    ``web_search_requests`` is the number of ``web_search_call`` output items."""
    renamed = {
        "prompt_tokens": usage.get("input_tokens"),
        "completion_tokens": usage.get("output_tokens"),
        "prompt_tokens_details": usage.get("input_tokens_details"),
        "completion_tokens_details": usage.get("output_tokens_details"),
    }
    return usage_from_openai(renamed, service_tier=service_tier, web_search_requests=web_search_requests)


def usage_from_openai_embeddings(usage: Mapping[str, Any]) -> Usage:
    """Usage of an embeddings response: ``prompt_tokens`` only (billed at the input rate)."""
    return Usage(input_tokens=_count(usage, "prompt_tokens", required=True))


def usage_from_anthropic(usage: Mapping[str, Any]) -> Usage:
    """Usage of a Messages response: ``input_tokens`` already excludes cache reads and writes.

    Cache writes are split by ``cache_creation.ephemeral_{5m,1h}_input_tokens`` when present; writes the
    split does not account for are billed as 5-minute writes (the API's default TTL). Thinking tokens
    (``output_tokens_details.thinking_tokens``) are inside ``output_tokens``, billed as output. The tier is
    ``usage.service_tier``; web searches are ``usage.server_tool_use.web_search_requests``.
    """
    cache_write_total = _count(usage, "cache_creation_input_tokens")
    split = _details(usage, "cache_creation")
    cache_write_1h = _count(split, "ephemeral_1h_input_tokens")
    cache_write_5m = max(_count(split, "ephemeral_5m_input_tokens"), cache_write_total - cache_write_1h)
    output_tokens = _count(usage, "output_tokens", required=True)
    thinking_tokens = _count(_details(usage, "output_tokens_details"), "thinking_tokens")
    return Usage(
        input_tokens=_count(usage, "input_tokens", required=True),
        output_tokens=output_tokens,
        cache_read_tokens=_count(usage, "cache_read_input_tokens"),
        cache_write_5m_tokens=cache_write_5m,
        cache_write_1h_tokens=cache_write_1h,
        reasoning_tokens=min(thinking_tokens, output_tokens),
        service_tier=billed_tier(usage.get("service_tier")),
        web_search_requests=_count(_details(usage, "server_tool_use"), "web_search_requests"),
    )


def _details(usage: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    details = usage.get(key)
    return details if isinstance(details, Mapping) else {}


def _count(usage: Mapping[str, Any], key: str, *, required: bool = False) -> int:
    value = usage.get(key)
    if value is None:
        if required:
            raise ValueError(f"usage has no {key}")
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"usage {key} must be a non-negative integer, got {value!r}")
    return value
