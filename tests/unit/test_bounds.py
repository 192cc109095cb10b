"""RULE 1 and every billed dimension in the worst case, from the request body alone (issue 8, items 2, 3, 9)."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest
from costbrake.errors import InputTooLarge, InvalidRequest
from costbrake.gateway.bounds import DEFAULT_SERVER_TOOL_USES, MIN_THINKING_BUDGET, bound_call
from costbrake.pricing import PriceTable
from costbrake.providers.base import CHAT_COMPLETIONS, MESSAGES
from costbrake.records import Feature, OverCap

AUTO_TIERS = {"openai": "default", "anthropic": "standard"}
FEATURE = Feature(name="chat", max_input_tokens=2_000_000, max_output_tokens=4096, default_max_output_tokens=1024)
PDF = base64.b64encode(b"%PDF-1.7\n" + b"1 0 obj << /Type /Page >> endobj\n" * 40).decode()


def bound(api: str, body: dict[str, Any], model: str, feature: Feature = FEATURE):
    """``api``: an API of ``providers.base``, or "openai" / "anthropic" for their chat APIs."""
    api = {"openai": CHAT_COMPLETIONS, "anthropic": MESSAGES}.get(api, api)
    upstream = {"model": model, **body}
    return bound_call(api, upstream, PriceTable.default().get(model), feature, auto_tiers=AUTO_TIERS), upstream


def chat(**extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "hello"}], **extra}


def test_given_no_max_tokens_when_bounding_then_the_feature_default_is_sent_upstream():
    bounds, upstream = bound("openai", chat(), "gpt-4o")

    assert bounds.max_output_tokens == 1024
    assert upstream["max_tokens"] == 1024


def test_given_both_max_tokens_and_max_completion_tokens_when_bounding_then_both_are_clamped_to_the_cap():
    bounds, upstream = bound("openai", chat(max_tokens=100_000, max_completion_tokens=50), "gpt-4o")

    assert bounds.max_output_tokens == 4096
    assert upstream["max_tokens"] == upstream["max_completion_tokens"] == 4096


def test_given_a_refusing_feature_when_max_tokens_is_above_its_cap_then_400_names_the_field():
    with pytest.raises(InvalidRequest) as refused:
        bound("openai", chat(max_completion_tokens=9000), "gpt-4o", replace(FEATURE, over_cap=OverCap.REFUSE))

    assert refused.value.param == "max_completion_tokens"


def test_given_n_choices_when_bounding_then_the_output_bound_counts_every_choice():
    bounds, _ = bound("openai", chat(max_tokens=100, n=4), "gpt-4o")

    assert bounds.output_tokens == 400


def test_given_a_thinking_budget_above_the_clamped_cap_when_bounding_then_the_budget_is_lowered_below_it():
    body = {**chat(max_tokens=20_000), "thinking": {"type": "enabled", "budget_tokens": 16_000}}

    bounds, upstream = bound("anthropic", body, "claude-sonnet-4-5")

    assert upstream["max_tokens"] == 4096
    assert upstream["thinking"]["budget_tokens"] == 4095
    assert bounds.max_output_tokens == 4096


def test_given_thinking_when_the_cap_leaves_no_room_for_the_smallest_budget_then_400():
    body = {**chat(max_tokens=20_000), "thinking": {"type": "enabled", "budget_tokens": 2000}}

    with pytest.raises(InvalidRequest, match=str(MIN_THINKING_BUDGET)):
        bound("anthropic", body, "claude-sonnet-4-5", replace(FEATURE, max_output_tokens=1000))


def test_given_web_search_without_max_uses_when_bounding_then_uses_are_set_and_every_pass_reads_the_window():
    body = {**chat(max_tokens=100), "tools": [{"type": "web_search_20250305", "name": "web_search"}]}

    bounds, upstream = bound("anthropic", body, "claude-sonnet-4-5")

    window = PriceTable.default().get("claude-sonnet-4-5").max_input_tokens
    assert upstream["tools"][0]["max_uses"] == DEFAULT_SERVER_TOOL_USES
    assert bounds.web_search_uses == DEFAULT_SERVER_TOOL_USES
    assert bounds.input_tokens == window * (1 + DEFAULT_SERVER_TOOL_USES)


def test_given_a_server_tool_costbrake_cannot_price_when_bounding_then_400():
    body = {**chat(max_tokens=100), "tools": [{"type": "code_execution_20250522", "name": "code_execution"}]}

    with pytest.raises(InvalidRequest, match="code_execution"):
        bound("anthropic", body, "claude-sonnet-4-5")


def test_given_client_tools_when_bounding_then_no_server_uses_and_the_input_is_the_estimate():
    tool = {"name": "get_weather", "input_schema": {"type": "object"}}

    bounds, _ = bound("anthropic", {**chat(max_tokens=100), "tools": [tool]}, "claude-sonnet-4-5")

    assert bounds.web_search_uses == 0
    assert bounds.input_tokens == bounds.sized_input_tokens


@pytest.mark.parametrize(
    ("asked", "reserved_at"),
    [(None, "default"), ("auto", "default"), ("priority", "priority"), ("flex", "flex"), ("default", "default")],
)
def test_given_an_openai_service_tier_when_bounding_then_the_reservation_prices_that_tier(asked, reserved_at):
    body = chat() if asked is None else chat(service_tier=asked)

    bounds, _ = bound("openai", body, "gpt-4o")

    assert bounds.service_tier == reserved_at


def test_given_an_unknown_service_tier_when_bounding_then_400():
    with pytest.raises(InvalidRequest):
        bound("openai", chat(service_tier="platinum"), "gpt-4o")


def test_given_priority_tier_when_pricing_the_worst_case_then_it_costs_more_than_the_default_tier():
    default, _ = bound("openai", chat(max_tokens=100), "gpt-4o")
    priority, _ = bound("openai", chat(max_tokens=100, service_tier="priority"), "gpt-4o")
    price = PriceTable.default().get("gpt-4o")

    assert priority.worst_case_usd(price) > default.worst_case_usd(price)


@pytest.mark.parametrize(("ttls", "expected"), [((), None), (("5m",), "5m"), (("5m", "1h"), "1h"), ((None,), "5m")])
def test_given_cache_control_markers_when_bounding_then_the_longest_ttl_is_priced(ttls, expected):
    blocks = [
        {"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral", **({"ttl": t} if t else {})}}
        for i, t in enumerate(ttls)
    ]
    body = {"messages": [{"role": "user", "content": [*blocks, {"type": "text", "text": "q"}]}], "max_tokens": 10}

    bounds, _ = bound("anthropic", body, "claude-sonnet-4-5")

    assert bounds.cache_write_ttl == expected


def test_given_a_one_hour_cache_write_when_pricing_the_worst_case_then_input_is_reserved_at_twice_the_input_rate():
    marker = {"type": "ephemeral", "ttl": "1h"}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": marker}]}]}
    bounds, _ = bound("anthropic", {**body, "max_tokens": 1}, "claude-sonnet-4-5")
    price = PriceTable.default().get("claude-sonnet-4-5")

    worst = bounds.worst_case_usd(price)

    assert worst >= bounds.input_tokens * price.rates.input * 2


def test_given_a_pdf_document_when_bounding_then_the_input_bound_is_the_models_context_window():
    document = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}
    body = {"messages": [{"role": "user", "content": [document, {"type": "text", "text": "Summarise."}]}]}

    bounds, _ = bound("anthropic", {**body, "max_tokens": 100}, "claude-sonnet-4-5")

    assert bounds.unsized
    assert bounds.input_tokens == PriceTable.default().get("claude-sonnet-4-5").max_input_tokens


def test_given_a_pdf_document_when_the_window_is_above_the_feature_input_cap_then_413_before_anything_is_spent():
    document = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}
    body = {"messages": [{"role": "user", "content": [document]}], "max_tokens": 100}

    with pytest.raises(InputTooLarge, match="context window"):
        bound("anthropic", body, "claude-sonnet-4-5", replace(FEATURE, max_input_tokens=32_000))


def test_given_audio_output_when_bounding_then_400_rather_than_an_unpriced_modality():
    with pytest.raises(InvalidRequest, match="Audio"):
        bound("openai", chat(modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"}), "gpt-4o")


def test_given_a_predicted_output_when_bounding_then_its_tokens_are_added_to_the_output_bound():
    plain, _ = bound("openai", chat(max_tokens=100), "gpt-4o")
    prediction = {"type": "content", "content": "x " * 500}
    predicted, _ = bound("openai", chat(max_tokens=100, prediction=prediction), "gpt-4o")

    assert predicted.output_tokens >= plain.output_tokens + 500


def test_given_a_reasoning_model_and_max_tokens_when_bounding_then_the_bound_goes_out_as_max_completion_tokens():
    bounds, upstream = bound("openai", chat(max_tokens=300), "gpt-5-mini")

    assert "max_tokens" not in upstream
    assert upstream["max_completion_tokens"] == bounds.max_output_tokens == 300


@pytest.mark.parametrize("tier", [["priority"], {"tier": "flex"}, 2])
def test_given_a_service_tier_that_is_not_a_string_when_bounding_then_400_not_a_crash(tier):
    with pytest.raises(InvalidRequest):
        bound("openai", chat(service_tier=tier), "gpt-4o")
    with pytest.raises(InvalidRequest):
        bound("anthropic", {**chat(max_tokens=10), "service_tier": tier}, "claude-haiku-4-5")


@pytest.mark.parametrize(
    ("field", "value"),
    [("mcp_servers", [{"type": "url", "url": "https://example.com/sse", "name": "x"}]), ("container", "cntr_1")],
)
def test_given_tools_that_loop_at_the_provider_when_bounding_then_refused_as_unbounded(field, value):
    with pytest.raises(InvalidRequest) as refused:
        bound("anthropic", {**chat(max_tokens=10), field: value}, "claude-sonnet-4-5")

    assert refused.value.param == field


def test_given_a_search_model_when_bounding_then_its_results_are_bounded_by_the_context_window():
    price = PriceTable.default().get("gpt-4o-search-preview")
    feature = replace(FEATURE, max_input_tokens=price.max_input_tokens)

    bounds, _ = bound("openai", chat(max_tokens=10), "gpt-4o-search-preview", feature)

    assert bounds.unsized and bounds.input_tokens == price.max_input_tokens
    assert bounds.web_search_uses == 1
