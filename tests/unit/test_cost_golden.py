"""Golden costs: each expected value was worked out by hand from the published USD-per-million prices.

Usage objects follow the providers' response shapes (OpenAI chat.completions ``usage``, Anthropic
Messages ``usage``). The arithmetic is written next to each expectation so a reviewer can redo it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from costbrake.errors import UnknownModel
from costbrake.pricing import PriceTable, cost_of, usage_from_anthropic, usage_from_openai, worst_case_cost


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
    assert worst_case_cost(table.get("gpt-4o"), 32_000, 4096) == Decimal("0.12096")


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
        "gpt-4",
        "gpt-4o-audio-preview-2024-10-01",  # a dated name of another family must not fall back to gpt-4o
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
