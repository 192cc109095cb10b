"""The exact USD cost of a call (``cost_of``) and the most a call can cost (``worst_case_cost``, its reservation)."""

from __future__ import annotations

from decimal import Decimal, localcontext

from costbrake.pricing.model_price import ModelPrice
from costbrake.pricing.rates import EXACT, TokenRates
from costbrake.pricing.service_tiers import STANDARD, requested_tiers
from costbrake.usage import Usage

# Cache-write TTLs a request can ask for; any other value (or one the gateway cannot read) is priced as 1h.
TTL_5M = "5m"
TTL_1H = "1h"


def _uncached_input_rate(price: ModelPrice, rates: TokenRates) -> Decimal:
    """OpenAI caches prompts on its own and its usage does not say which tokens it wrote: where the data has
    a cache-write rate above the input rate, every uncached input token is charged as a possible write."""
    if price.provider == "openai":
        return max(rates.input, rates.cache_write_5m)
    return rates.input


def cost_of(price: ModelPrice, usage: Usage) -> Decimal:
    """Exact USD cost of a call at the tier the response reports; the context tier is chosen by all input
    tokens, cached ones included; web searches are priced per use."""
    counts = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_5m_tokens,
        usage.cache_write_1h_tokens,
        usage.reasoning_tokens,
        usage.web_search_requests,
    )
    if any(count < 0 for count in counts):
        raise ValueError(f"token counts must be non-negative: {usage}")
    rates = price.rates_for(usage.total_input_tokens, usage.service_tier or STANDARD)
    reasoning_tokens = min(usage.reasoning_tokens, usage.output_tokens)
    with localcontext(EXACT):
        return (
            usage.input_tokens * _uncached_input_rate(price, rates)
            + usage.cache_read_tokens * rates.cache_read
            + usage.cache_write_5m_tokens * rates.cache_write_5m
            + usage.cache_write_1h_tokens * rates.cache_write_1h
            + (usage.output_tokens - reasoning_tokens) * rates.billed_output
            + reasoning_tokens * rates.billed_reasoning
            + usage.web_search_requests * price.web_search_price
        )


def worst_case_cost(
    price: ModelPrice,
    input_tokens: int,
    output_tokens: int,
    *,
    service_tier: str | None = None,
    cache_write_ttl: str | None = None,
    web_search_uses: int = 0,
) -> Decimal:
    """The most a call can cost: an upper bound of ``cost_of`` for every usage the request allows.

    ``input_tokens`` bounds all input (uncached, cache reads and cache writes together), ``output_tokens``
    all output (reasoning included). ``service_tier`` is the request's own value, as sent (None when
    absent): the bound is the dearest tier it lets the provider bill (``requested_tiers``; OpenAI's absent
    or ``"auto"`` includes priority). ``cache_write_ttl`` is the prompt-cache TTL the request asks for:
    None when it asks for no cache write (OpenAI caches anyway, so its write rate always counts),
    ``"5m"``, ``"1h"``, or anything else for a request the gateway cannot read — priced as 1h.
    ``web_search_uses`` bounds the server-side web searches (the request's ``max_uses``).

    Every input token is priced at the dearest rate it could be billed at in that tier (input, cache read,
    the allowed cache writes); every output token at the dearer of output and reasoning; when the input
    bound is above the long-context threshold, both context tiers are priced and the dearer is kept.
    """
    if input_tokens < 0 or output_tokens < 0 or web_search_uses < 0:
        raise ValueError("token counts and web search uses must be non-negative")
    tiers = requested_tiers(price.provider, service_tier)
    threshold = price.long_context_threshold
    worst = Decimal(0)
    for tier in tiers:
        tier_rates = price.tier_rates(tier)
        candidates = [tier_rates.rates]
        if tier_rates.long_context_rates is not None and threshold is not None and input_tokens > threshold:
            candidates.append(tier_rates.long_context_rates)
        for rates in candidates:
            input_rate = max(_uncached_input_rate(price, rates), *_cached_input_rates(price, rates, cache_write_ttl))
            output_rate = max(rates.billed_output, rates.billed_reasoning)
            with localcontext(EXACT):
                worst = max(worst, input_tokens * input_rate + output_tokens * output_rate)
    with localcontext(EXACT):
        return worst + web_search_uses * price.web_search_price


def _cached_input_rates(price: ModelPrice, rates: TokenRates, cache_write_ttl: str | None) -> list[Decimal]:
    allowed = [rates.cache_read]
    if cache_write_ttl is not None or price.provider == "openai":
        allowed.append(rates.cache_write_5m)
    if cache_write_ttl is not None and cache_write_ttl != TTL_5M:
        allowed.append(rates.cache_write_1h)
    return allowed
