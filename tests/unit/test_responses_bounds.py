"""RULE 1 and the worst case of Responses and embeddings calls, from the request body alone (issue 10)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from costbrake.errors import InputTooLarge, InvalidRequest
from costbrake.gateway.bounds import DEFAULT_SERVER_TOOL_USES, CallBounds, bound_call
from costbrake.pricing import PriceTable, cost_of
from costbrake.providers.base import EMBEDDINGS, RESPONSES
from costbrake.records import Feature, OverCap
from costbrake.tokens import estimate_embeddings_input_tokens, estimate_openai_responses_input_tokens
from costbrake.usage import Usage
from reference_tokenizers import openai_cl100k_tokens, openai_o200k_tokens

AUTO_TIERS = {"openai": "default", "anthropic": "standard"}
FEATURE = Feature(name="chat", max_input_tokens=2_000_000, max_output_tokens=4096, default_max_output_tokens=1024)
PRICES = PriceTable.default()
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


def responses(body: dict[str, Any], model: str = "gpt-4o", feature: Feature = FEATURE) -> tuple[CallBounds, dict]:
    upstream = {"model": model, **body}
    return bound_call(RESPONSES, upstream, PRICES.get(model), feature, auto_tiers=AUTO_TIERS), upstream


def embeddings(value: Any, model: str = "text-embedding-3-small", feature: Feature = FEATURE) -> CallBounds:
    return bound_call(EMBEDDINGS, {"model": model, "input": value}, PRICES.get(model), feature, auto_tiers=AUTO_TIERS)


# ---- output: RULE 1 ------------------------------------------------------------------------------------------


def test_given_no_max_output_tokens_when_bounding_a_response_then_the_feature_default_goes_upstream():
    bounds, upstream = responses({"input": "hello"})

    assert bounds.max_output_tokens == upstream["max_output_tokens"] == 1024
    assert bounds.output_fields == ("max_output_tokens",) and "max_tokens" not in upstream


def test_given_max_output_tokens_above_the_cap_then_clamped_or_refused_per_feature():
    bounds, upstream = responses({"input": "hello", "max_output_tokens": 100_000})
    assert bounds.max_output_tokens == upstream["max_output_tokens"] == 4096

    with pytest.raises(InvalidRequest) as refused:
        responses({"input": "hello", "max_output_tokens": 100_000}, feature=replace(FEATURE, over_cap=OverCap.REFUSE))
    assert refused.value.param == "max_output_tokens"


def test_given_a_reasoning_model_then_its_reasoning_is_bounded_by_max_output_tokens_at_the_dearest_output_rate():
    bounds, _ = responses({"input": "hi", "reasoning": {"effort": "high"}, "max_output_tokens": 2000}, "gpt-5")
    price = PRICES.get("gpt-5")

    reasoned = Usage(input_tokens=bounds.input_tokens, output_tokens=2000, reasoning_tokens=2000)
    assert bounds.worst_case_usd(price) >= cost_of(price, reasoned)


# ---- input ---------------------------------------------------------------------------------------------------


def test_given_text_instructions_items_and_tools_then_the_input_bound_is_above_what_the_tokenizers_count():
    text = "Summarise the plot of Hamlet in two sentences, please."
    body = {
        "instructions": "You are terse.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": text}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
        "tools": [WEATHER],
    }

    bounds, _ = responses(body)

    everything = " ".join([text, "You are terse.", "get_weather", '{"city":"Paris"}', "sunny"])
    assert bounds.unsized == ()
    assert bounds.input_tokens >= max(openai_o200k_tokens(everything), openai_cl100k_tokens(everything)) + 20
    assert bounds.input_tokens == estimate_openai_responses_input_tokens({"model": "gpt-4o", **body}).tokens


def test_given_text_input_as_a_string_then_it_is_bounded_like_a_user_message():
    as_text = estimate_openai_responses_input_tokens({"input": "hello there"})
    as_item = estimate_openai_responses_input_tokens({"input": [{"role": "user", "content": "hello there"}]})

    assert as_text == as_item and as_text.tokens > 0


@pytest.mark.parametrize(
    ("extra", "unsized"),
    [
        ({"previous_response_id": "resp_1"}, "previous response"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt template"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item reference"),
        ({"input": [{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"}]}, "reasoning"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]}, "file"),
    ],
)
def test_given_context_the_gateway_cannot_see_then_the_context_window_bounds_the_input(extra, unsized):
    bounds, _ = responses({"input": "And then?", **extra}, "gpt-4o-mini")

    assert unsized in bounds.unsized
    assert bounds.input_tokens == PRICES.get("gpt-4o-mini").max_input_tokens


def test_given_a_previous_response_and_the_default_input_cap_then_413_names_it_and_the_window():
    with pytest.raises(InputTooLarge) as refused:
        responses(
            {"previous_response_id": "resp_1", "input": "And then?"}, feature=replace(FEATURE, max_input_tokens=32_000)
        )

    assert "previous response" in refused.value.message and "context window" in refused.value.message
    assert refused.value.param == "input"


def test_given_an_image_of_unknown_size_then_it_costs_the_detail_levels_largest_image():
    image = {"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/cat.png"}]}
    low = {"role": "user", "content": [{"type": "input_image", "file_id": "file_1", "detail": "low"}]}

    high_bound = estimate_openai_responses_input_tokens({"model": "gpt-4o", "input": [image]})
    low_bound = estimate_openai_responses_input_tokens({"model": "gpt-4o", "input": [low]})

    assert high_bound.unsized == low_bound.unsized == ()
    assert high_bound.tokens > 2_700 > low_bound.tokens > 600


# ---- tools ---------------------------------------------------------------------------------------------------


def test_given_a_web_search_tool_without_max_tool_calls_then_it_is_set_and_each_search_and_pass_is_reserved():
    bounds, upstream = responses({"input": "news?", "tools": [{"type": "web_search"}]}, "gpt-4o-mini")
    price = PRICES.get("gpt-4o-mini")

    assert upstream["max_tool_calls"] == bounds.web_search_uses == DEFAULT_SERVER_TOOL_USES
    assert bounds.input_tokens == price.max_input_tokens * (1 + DEFAULT_SERVER_TOOL_USES)
    assert "web search results" in bounds.unsized
    without = replace(bounds, web_search_uses=0)
    assert bounds.worst_case_usd(price) == without.worst_case_usd(price) + 3 * price.web_search_price


def test_given_max_tool_calls_then_it_bounds_the_searches():
    bounds, upstream = responses(
        {"input": "news?", "tools": [{"type": "web_search_preview"}], "max_tool_calls": 1}, "gpt-4o-mini"
    )

    assert bounds.web_search_uses == upstream["max_tool_calls"] == 1


def test_given_only_client_side_tools_then_no_search_is_reserved_and_max_tool_calls_is_left_alone():
    bounds, upstream = responses({"input": "weather?", "tools": [WEATHER, {"type": "custom", "name": "x"}]})

    assert bounds.web_search_uses == 0 and "max_tool_calls" not in upstream and bounds.unsized == ()


@pytest.mark.parametrize(
    "tool", ["file_search", "code_interpreter", "image_generation", "computer_use_preview", "mcp", None]
)
def test_given_a_built_in_tool_without_a_sound_price_then_it_is_refused(tool):
    with pytest.raises(InvalidRequest) as refused:
        responses({"input": "x", "tools": [{"type": tool}]})

    assert refused.value.param == "tools"


@pytest.mark.parametrize(("field", "value"), [("background", True), ("context_management", [{"type": "compaction"}])])
def test_given_what_cannot_be_settled_or_bounded_then_it_is_refused(field, value):
    with pytest.raises(InvalidRequest) as refused:
        responses({"input": "x", field: value})

    assert refused.value.param == field


# ---- tiers and cache ------------------------------------------------------------------------------------------


def test_given_fast_service_tier_then_the_priority_rates_are_reserved_and_ultrafast_is_refused():
    fast, _ = responses({"input": "x", "service_tier": "fast"}, "gpt-5")
    default, _ = responses({"input": "x", "service_tier": "default"}, "gpt-5")

    assert fast.service_tier == "priority"
    assert fast.worst_case_usd(PRICES.get("gpt-5")) > default.worst_case_usd(PRICES.get("gpt-5"))
    with pytest.raises(InvalidRequest):
        responses({"input": "x", "service_tier": "ultrafast"}, "gpt-5")


def test_given_an_extended_prompt_cache_lifetime_then_the_longer_ttl_write_rate_is_in_the_worst_case():
    bounds, _ = responses({"input": "x", "prompt_cache_options": {"ttl": "12h"}}, "gpt-5")

    assert bounds.cache_write_ttl == "1h"


# ---- embeddings ------------------------------------------------------------------------------------------------


def test_given_texts_when_bounding_embeddings_then_each_text_is_bounded_and_there_is_no_output():
    texts = ["Budgets stop cost explosions.", "naïve café ☕ 12345"]

    bounds = embeddings(texts)

    assert bounds.input_tokens >= sum(openai_cl100k_tokens(text) for text in texts)
    assert (bounds.max_output_tokens, bounds.output_tokens, bounds.output_fields) == (0, 0, ())
    price = PRICES.get("text-embedding-3-small")
    assert bounds.worst_case_usd(price) == bounds.input_tokens * price.rates.input  # standard tier, input only


@pytest.mark.parametrize(("value", "tokens"), [([1, 2, 3], 3), ([[1, 2], [3, 4, 5]], 5)])
def test_given_token_arrays_then_they_count_exactly(value, tokens):
    assert estimate_embeddings_input_tokens(value) == tokens
    assert embeddings(value).input_tokens == tokens


def test_given_embedding_input_above_the_features_cap_then_413():
    with pytest.raises(InputTooLarge) as refused:
        embeddings([list(range(600))] * 10, feature=replace(FEATURE, max_input_tokens=5_000))

    assert refused.value.param == "input"


def test_given_an_embedding_worst_case_then_it_covers_the_usage_it_bounds():
    bounds = embeddings("hello world")
    price = PRICES.get("text-embedding-3-small")

    assert bounds.worst_case_usd(price) >= cost_of(price, Usage(input_tokens=bounds.input_tokens)) > Decimal(0)
