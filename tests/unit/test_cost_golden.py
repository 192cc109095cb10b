"""Golden costs: each expected value was worked out by hand from the published USD-per-million prices.

Usage objects follow the providers' response shapes (OpenAI chat.completions ``usage``, Anthropic
Messages ``usage``). The arithmetic is written next to each expectation so a reviewer can redo it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from costbrake.errors import UnknownModel
from costbrake.pricing import (
    TTL_1H,
    TTL_5M,
    ModelPrice,
    PriceTable,
    TokenRates,
    cost_of,
    requested_tiers,
    usage_from_anthropic,
    usage_from_openai,
    worst_case_cost,
)
from costbrake.usage import Usage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.default()


def openai_usage(prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# --- OpenAI -------------------------------------------------------------------------------------------


def test_given_gpt_4o_plain_usage_when_priced_then_input_and_output_rates_apply(table: PriceTable) -> None:
    usage = usage_from_openai(openai_usage(1200, 300))
    # 1200 x $2.50/M = 0.003; 300 x $10/M = 0.003
    assert cost_of(table.get("gpt-4o"), usage) == Decimal("0.006")


def test_given_usage_without_details_when_priced_then_all_prompt_tokens_are_uncached(
    table: PriceTable,
) -> None:
    usage = usage_from_openai({"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500})
    # 1000 x $0.15/M = 0.00015; 500 x $0.60/M = 0.0003
    assert cost_of(table.get("gpt-4o-mini"), usage) == Decimal("0.00045")


def test_given_gpt_4o_cached_prompt_when_priced_then_cached_tokens_cost_half(table: PriceTable) -> None:
    usage = usage_from_openai(openai_usage(2006, 300, cached=1920))
    # 86 uncached x $2.50/M = 0.000215; 1920 cached x $1.25/M = 0.0024; 300 x $10/M = 0.003
    assert cost_of(table.get("gpt-4o"), usage) == Decimal("0.005615")


def test_given_gpt_4_1_cached_prompt_when_priced_then_cached_tokens_cost_a_quarter(table: PriceTable) -> None:
    usage = usage_from_openai(openai_usage(10_000, 500, cached=8192))
    # 1808 x $2/M = 0.003616; 8192 x $0.50/M = 0.004096; 500 x $8/M = 0.004
    assert cost_of(table.get("gpt-4.1"), usage) == Decimal("0.011712")


def test_given_gpt_5_cached_prompt_when_priced_then_cached_tokens_cost_a_tenth(table: PriceTable) -> None:
    usage = usage_from_openai(openai_usage(50_000, 1000, cached=40_960, reasoning=640))
    # 9040 x $1.25/M = 0.0113; 40960 x $0.125/M = 0.00512; 1000 x $10/M = 0.01
    assert cost_of(table.get("gpt-5"), usage) == Decimal("0.02642")


def test_given_o3_reasoning_tokens_when_priced_then_they_are_billed_once_as_output(table: PriceTable) -> None:
    usage = usage_from_openai(openai_usage(75, 1186, reasoning=1024))
    assert (usage.output_tokens, usage.reasoning_tokens) == (1186, 1024)
    # 75 x $2/M = 0.00015; 1186 x $8/M = 0.009488 (reasoning is inside completion_tokens, not added)
    assert cost_of(table.get("o3"), usage) == Decimal("0.009638")


def test_given_gpt_5_mostly_reasoning_output_when_priced_then_output_rate_covers_reasoning(
    table: PriceTable,
) -> None:
    usage = usage_from_openai(openai_usage(2000, 3000, reasoning=2500))
    # 2000 x $1.25/M = 0.0025; 3000 x $10/M = 0.03
    assert cost_of(table.get("gpt-5"), usage) == Decimal("0.0325")


# --- Anthropic ----------------------------------------------------------------------------------------


def test_given_haiku_plain_usage_when_priced_then_input_and_output_rates_apply(table: PriceTable) -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 2095,
            "output_tokens": 503,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        }
    )
    # 2095 x $1/M = 0.002095; 503 x $5/M = 0.002515
    assert cost_of(table.get("claude-haiku-4-5"), usage) == Decimal("0.00461")


def test_given_opus_4_1_usage_with_null_cache_fields_when_priced_then_plain_rates_apply(
    table: PriceTable,
) -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 1000,
            "output_tokens": 1000,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
        }
    )
    # 1000 x $15/M = 0.015; 1000 x $75/M = 0.075
    assert cost_of(table.get("claude-opus-4-1"), usage) == Decimal("0.09")


def test_given_sonnet_cache_read_and_5m_and_1h_writes_when_priced_then_each_multiplier_applies(
    table: PriceTable,
) -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 50,
            "cache_read_input_tokens": 10_000,
            "cache_creation_input_tokens": 3000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
            "output_tokens": 400,
            "service_tier": "standard",
        }
    )
    # 50 x $3/M = 0.00015; read 10000 x $0.30/M = 0.003; 5m write 1000 x $3.75/M = 0.00375;
    # 1h write 2000 x $6/M = 0.012; output 400 x $15/M = 0.006
    assert cost_of(table.get("claude-sonnet-4-5"), usage) == Decimal("0.0249")


def test_given_unsplit_cache_creation_when_priced_then_it_is_billed_as_5m_write(table: PriceTable) -> None:
    usage = usage_from_anthropic({"input_tokens": 20, "cache_creation_input_tokens": 4000, "output_tokens": 100})
    # 20 x $5/M = 0.0001; 4000 x $6.25/M = 0.025; 100 x $25/M = 0.0025
    assert cost_of(table.get("claude-opus-4-5"), usage) == Decimal("0.0276")


def test_given_sonnet_above_200k_input_when_priced_then_long_context_rates_apply(table: PriceTable) -> None:
    usage = usage_from_anthropic({"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 2000})
    # 210,000 input tokens in all (cache reads count): 150000 x $6/M = 0.9; 60000 x $0.60/M = 0.036;
    # 2000 x $22.50/M = 0.045
    assert cost_of(table.get("claude-sonnet-4-5"), usage) == Decimal("0.981")


def test_given_sonnet_above_200k_with_cache_writes_when_priced_then_long_context_write_rates_apply(
    table: PriceTable,
) -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 190_000,
            "cache_creation_input_tokens": 20_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 10_000, "ephemeral_1h_input_tokens": 10_000},
            "output_tokens": 1000,
        }
    )
    # 190000 x $6/M = 1.14; 10000 x $7.50/M = 0.075; 10000 x $12/M = 0.12; 1000 x $22.50/M = 0.0225
    assert cost_of(table.get("claude-sonnet-4-5"), usage) == Decimal("1.3575")


def test_given_sonnet_exactly_200k_input_when_priced_then_base_rates_apply(table: PriceTable) -> None:
    usage = usage_from_anthropic({"input_tokens": 200_000, "output_tokens": 1000})
    # 200000 x $3/M = 0.6; 1000 x $15/M = 0.015
    assert cost_of(table.get("claude-sonnet-4-5"), usage) == Decimal("0.615")


def test_given_sonnet_one_token_above_200k_when_priced_then_long_context_rates_apply(
    table: PriceTable,
) -> None:
    usage = usage_from_anthropic({"input_tokens": 200_001, "output_tokens": 1000})
    # 200001 x $6/M = 1.200006; 1000 x $22.50/M = 0.0225
    assert cost_of(table.get("claude-sonnet-4-5"), usage) == Decimal("1.222506")


# --- worst case (the reservation) ----------------------------------------------------------------------


def test_given_gpt_4o_request_when_worst_case_computed_then_all_input_uncached_plus_max_output(
    table: PriceTable,
) -> None:
    # 32000 x $2.50/M = 0.08; 4096 x $10/M = 0.04096
    assert worst_case_cost(table.get("gpt-4o"), 32_000, 4096, service_tier="default") == Decimal("0.12096")


def test_given_gpt_4o_request_without_tier_when_worst_case_computed_then_priority_is_reserved(
    table: PriceTable,
) -> None:
    # Absent service_tier is "auto": the project's tier, maybe priority. 32000 x $4.25/M = 0.136; 4096 x $17/M
    assert worst_case_cost(table.get("gpt-4o"), 32_000, 4096) == Decimal("0.205632")
    assert worst_case_cost(table.get("gpt-4o"), 32_000, 4096, service_tier="auto") == Decimal("0.205632")
    # flex has no gpt-4o price: reserved (and charged) at standard
    assert worst_case_cost(table.get("gpt-4o"), 32_000, 4096, service_tier="flex") == Decimal("0.12096")


def test_given_claude_request_with_cache_ttl_when_worst_case_computed_then_the_write_rate_bounds_input(
    table: PriceTable,
) -> None:
    opus = table.get("claude-opus-4-6")
    # no caching asked: 10000 x $5/M = 0.05; 1000 x $25/M = 0.025
    assert worst_case_cost(opus, 10_000, 1000) == Decimal("0.075")
    # 5m writes: 10000 x $6.25/M = 0.0625
    assert worst_case_cost(opus, 10_000, 1000, cache_write_ttl="5m") == Decimal("0.0875")
    # 1h writes (and a TTL the gateway cannot read): 10000 x $10/M = 0.1
    assert worst_case_cost(opus, 10_000, 1000, cache_write_ttl="1h") == Decimal("0.125")
    assert worst_case_cost(opus, 10_000, 1000, cache_write_ttl="7d") == Decimal("0.125")
    # 5 searches at $10 per 1,000
    assert worst_case_cost(opus, 10_000, 1000, web_search_uses=5) == Decimal("0.125")


def test_given_sonnet_at_and_above_threshold_when_worst_case_computed_then_tier_follows_input(
    table: PriceTable,
) -> None:
    sonnet = table.get("claude-sonnet-4-5")
    # 200000 x $3/M = 0.6; 4096 x $15/M = 0.06144
    assert worst_case_cost(sonnet, 200_000, 4096) == Decimal("0.66144")
    # 200001 x $6/M = 1.200006; 4096 x $22.50/M = 0.09216
    assert worst_case_cost(sonnet, 200_001, 4096) == Decimal("1.292166")


# --- model names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # 1200 x $2.50/M + 300 x $10/M
        ("gpt-4o-2024-08-06", Decimal("0.006")),
        ("gpt-4o-2024-11-20", Decimal("0.006")),
        # 1200 x $0.15/M = 0.00018; 300 x $0.60/M = 0.00018 - the mini family, never gpt-4o
        ("gpt-4o-mini-2024-07-18", Decimal("0.00036")),
        # 1200 x $2/M = 0.0024; 300 x $8/M = 0.0024
        ("gpt-4.1-2025-04-14", Decimal("0.0048")),
        ("o3-2025-04-16", Decimal("0.0048")),
        # 1200 x $1.25/M = 0.0015; 300 x $10/M = 0.003
        ("gpt-5-2025-08-07", Decimal("0.0045")),
        # 1200 x $0.25/M = 0.0003; 300 x $2/M = 0.0006
        ("gpt-5-mini-2025-08-07", Decimal("0.0009")),
        # 1200 x $1.10/M = 0.00132; 300 x $4.40/M = 0.00132
        ("o4-mini-2025-04-16", Decimal("0.00264")),
        # gpt-4o's first snapshot kept its launch price: 1200 x $5/M = 0.006; 300 x $15/M = 0.0045
        ("gpt-4o-2024-05-13", Decimal("0.0105")),
    ],
)
def test_given_dated_openai_snapshot_when_priced_then_its_base_model_price_applies(
    table: PriceTable, model: str, expected: Decimal
) -> None:
    assert cost_of(table.get(model), usage_from_openai(openai_usage(1200, 300))) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # 1000 x $3/M = 0.003; 100 x $15/M = 0.0015
        ("claude-sonnet-4-5-20250929", Decimal("0.0045")),
        # 1000 x $1/M = 0.001; 100 x $5/M = 0.0005
        ("claude-haiku-4-5-20251001", Decimal("0.0015")),
        # 1000 x $5/M = 0.005; 100 x $25/M = 0.0025
        ("claude-opus-4-5-20251101", Decimal("0.0075")),
        # 1000 x $15/M = 0.015; 100 x $75/M = 0.0075
        ("claude-opus-4-1-20250805", Decimal("0.0225")),
    ],
)
def test_given_dated_claude_snapshot_when_priced_then_its_base_model_price_applies(
    table: PriceTable, model: str, expected: Decimal
) -> None:
    usage = usage_from_anthropic({"input_tokens": 1000, "output_tokens": 100})
    assert cost_of(table.get(model), usage) == expected


@pytest.mark.parametrize(
    "model",
    [
        "gpt-9",
        "gpt-4o-audio-preview-2024-10-01",  # a dated name of another family must not fall back to gpt-4o
        "gpt-audio",  # priced per audio token, which the gateway does not meter
        "claude-3-opus-20240229",
        "claude-sonnet-4-5-latest",
        "gpt-4o-mini-tts",
        "",
    ],
)
def test_given_unpriced_model_when_looked_up_then_unknown_model_is_raised(table: PriceTable, model: str) -> None:
    with pytest.raises(UnknownModel) as raised:
        table.get(model)
    assert raised.value.model == model
    assert model not in table


# --- spot checks against DESIGN's published prices ---------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "usage", "expected"),
    [
        # 1000 x $5/M + 1000 x $25/M
        ("claude-opus-4-6", Usage(input_tokens=1000, output_tokens=1000), Decimal("0.03")),
        # 1000 x $3/M + 1000 x $15/M
        ("claude-sonnet-4-6", Usage(input_tokens=1000, output_tokens=1000), Decimal("0.018")),
        # 1000 x $1.25/M + 1000 x $10/M
        ("gpt-5", Usage(input_tokens=1000, output_tokens=1000), Decimal("0.01125")),
        # priority: 1000 x $2.50/M + 1000 x $20/M (2x)
        ("gpt-5", Usage(input_tokens=1000, output_tokens=1000, service_tier="priority"), Decimal("0.0225")),
        # flex: 1000 x $0.625/M + 1000 x $5/M (0.5x)
        ("gpt-5", Usage(input_tokens=1000, output_tokens=1000, service_tier="flex"), Decimal("0.005625")),
        # batch: 1000 x $0.50/M + 1000 x $2.50/M (0.5x)
        ("claude-haiku-4-5", Usage(input_tokens=1000, output_tokens=1000, service_tier="batch"), Decimal("0.003")),
        # 1h cache write 2x: 1000 x $6/M + 100 x $15/M
        ("claude-sonnet-4-6", Usage(cache_write_1h_tokens=1000, output_tokens=100), Decimal("0.0075")),
        # 50 searches at $10 per 1,000 + 100 x $5/M + 10 x $25/M
        ("claude-opus-4-6", Usage(input_tokens=100, output_tokens=10, web_search_requests=50), Decimal("0.50075")),
        # 1000 embedding tokens x $0.02/M
        ("text-embedding-3-small", Usage(input_tokens=1000), Decimal("0.00002")),
    ],
)
def test_given_design_prices_when_priced_then_the_published_figures_come_out(
    table: PriceTable, model: str, usage: Usage, expected: Decimal
) -> None:
    assert cost_of(table.get(model), usage) == expected


# --- golden usage shapes over every packaged model ----------------------------------------------------------

SHAPES: dict[str, Usage] = {
    "plain": Usage(input_tokens=1200, output_tokens=300),
    "cached read": Usage(input_tokens=86, cache_read_tokens=1920, output_tokens=300),
    "cache write 5m": Usage(input_tokens=20, cache_write_5m_tokens=4000, output_tokens=100),
    "cache write 1h": Usage(input_tokens=20, cache_write_1h_tokens=4000, output_tokens=100),
    "reasoning": Usage(input_tokens=2000, output_tokens=3000, reasoning_tokens=2500),
    "web search": Usage(input_tokens=5000, output_tokens=200, web_search_requests=3),
    "priority": Usage(input_tokens=1200, output_tokens=300, service_tier="priority"),
    "flex": Usage(input_tokens=1200, output_tokens=300, service_tier="flex"),
    "batch": Usage(input_tokens=1200, output_tokens=300, service_tier="batch"),
}


def by_hand(price: ModelPrice, usage: Usage) -> Decimal:
    """The cost redone from the model's own rates, dimension by dimension."""
    tier = price.tier_rates(usage.service_tier or "standard")
    long = price.long_context_threshold is not None and usage.total_input_tokens > price.long_context_threshold
    rates: TokenRates = tier.long_context_rates if long and tier.long_context_rates else tier.rates
    uncached = max(rates.input, rates.cache_write_5m) if price.provider == "openai" else rates.input
    output = rates.output if rates.output > 0 else rates.input
    reasoning = rates.reasoning if rates.reasoning > 0 else rates.input
    visible = usage.output_tokens - usage.reasoning_tokens
    return (
        Decimal(usage.input_tokens) * uncached
        + Decimal(usage.cache_read_tokens) * rates.cache_read
        + Decimal(usage.cache_write_5m_tokens) * rates.cache_write_5m
        + Decimal(usage.cache_write_1h_tokens) * rates.cache_write_1h
        + Decimal(visible) * output
        + Decimal(usage.reasoning_tokens) * reasoning
        + Decimal(usage.web_search_requests) * price.web_search_price
    )


def shapes_of(price: ModelPrice) -> dict[str, Usage]:
    shapes = dict(SHAPES)
    if price.long_context_threshold is not None:
        above = price.long_context_threshold + 1
        shapes["long context"] = Usage(input_tokens=above - 1000, cache_read_tokens=1000, output_tokens=1000)
        shapes["long context priority"] = Usage(input_tokens=above, output_tokens=1000, service_tier="priority")
    return shapes


@pytest.mark.parametrize("model", [price.model for price in PriceTable.default().models()])
def test_given_every_packaged_model_when_golden_shapes_priced_then_each_matches_its_own_rates(
    table: PriceTable, model: str
) -> None:
    price = table.get(model)
    for name, usage in shapes_of(price).items():
        cost = cost_of(price, usage)
        assert cost == by_hand(price, usage), f"{model}: {name}"
        assert cost > 0, f"{model}: {name} recorded as free"
        tier = {"priority": "priority", "flex": "flex", "batch": "batch"}.get(usage.service_tier or "")
        ttl = TTL_1H if usage.cache_write_1h_tokens else TTL_5M if usage.cache_write_5m_tokens else None
        bound = worst_case_cost(
            price,
            usage.total_input_tokens,
            usage.output_tokens,
            service_tier=tier,
            cache_write_ttl=ttl,
            web_search_uses=usage.web_search_requests,
        )
        assert cost <= bound, f"{model}: {name} costs {cost}, above its reservation {bound}"


def test_given_long_context_shape_when_priced_then_every_long_context_model_charges_its_tier(
    table: PriceTable,
) -> None:
    long_models = [price for price in table.models() if price.long_context_rates is not None]
    assert {"claude-sonnet-4-5", "claude-sonnet-4-20250514", "gpt-5.5", "gpt-5.4"} <= {p.model for p in long_models}
    for price in long_models:
        assert price.long_context_threshold is not None and price.long_context_rates is not None
        below = cost_of(price, Usage(input_tokens=price.long_context_threshold, output_tokens=0))
        above = cost_of(price, Usage(input_tokens=price.long_context_threshold + 1, output_tokens=0))
        rates = price.long_context_rates
        uncached = max(rates.input, rates.cache_write_5m) if price.provider == "openai" else rates.input
        assert above == (price.long_context_threshold + 1) * uncached, price.model
        assert above > below, price.model


# --- the reservation bounds the charge: a property ----------------------------------------------------------

_MODELS = PriceTable.default().models()
_TTLS = [None, TTL_5M, TTL_1H, "unreadable"]
_REQUESTS = {
    "openai": [None, "auto", "default", "flex", "priority", "scale"],
    "anthropic": [None, "auto", "standard_only"],
}


@st.composite
def calls(draw: st.DrawFn) -> tuple[ModelPrice, dict[str, object], Usage]:
    price = draw(st.sampled_from(_MODELS))
    input_bound = draw(st.integers(0, 1_200_000))
    output_bound = draw(st.integers(0, 200_000))
    requested = draw(st.sampled_from(_REQUESTS[price.provider]))
    ttl = draw(st.sampled_from(_TTLS))
    uses = draw(st.integers(0, 50))
    # A usage the request allows: input split any way the TTL permits, within the bounds.
    total = draw(st.integers(0, input_bound))
    read = draw(st.integers(0, total))
    writes_allowed = ttl is not None or price.provider == "openai"
    write_5m = draw(st.integers(0, total - read)) if writes_allowed and ttl != TTL_1H else 0
    write_1h = draw(st.integers(0, total - read - write_5m)) if ttl not in (None, TTL_5M) else 0
    output = draw(st.integers(0, output_bound))
    usage = Usage(
        input_tokens=total - read - write_5m - write_1h,
        cache_read_tokens=read,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        output_tokens=output,
        reasoning_tokens=draw(st.integers(0, output)),
        service_tier=draw(st.sampled_from(requested_tiers(price.provider, requested))),
        web_search_requests=draw(st.integers(0, uses)),
    )
    request = {
        "input_tokens": input_bound,
        "output_tokens": output_bound,
        "service_tier": requested,
        "cache_write_ttl": ttl,
        "web_search_uses": uses,
    }
    return price, request, usage


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls())
def test_given_any_usage_within_the_request_when_priced_then_it_never_exceeds_the_worst_case(
    call: tuple[ModelPrice, dict[str, object], Usage],
) -> None:
    price, request, usage = call
    bound = worst_case_cost(
        price,
        int(request["input_tokens"]),  # type: ignore[call-overload]
        int(request["output_tokens"]),  # type: ignore[call-overload]
        service_tier=request["service_tier"],  # type: ignore[arg-type]
        cache_write_ttl=request["cache_write_ttl"],  # type: ignore[arg-type]
        web_search_uses=int(request["web_search_uses"]),  # type: ignore[call-overload]
    )
    assert cost_of(price, usage) <= bound
