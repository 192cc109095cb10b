"""The price table: packaged data, loading rules, lookups, overrides and usage parsing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from costbrake.errors import UnknownModel
from costbrake.pricing import (
    ModelPrice,
    PriceDataError,
    PriceTable,
    billed_tier,
    cost_of,
    downgrade_target,
    requested_tiers,
    usage_from_anthropic,
    usage_from_openai,
    usage_from_openai_embeddings,
    usage_from_openai_responses,
    worst_case_cost,
)
from costbrake.usage import Usage

MILLION = Decimal(1_000_000)

# Published USD per million tokens: (provider, input, output, cache read).
PUBLISHED = {
    "claude-haiku-4-5": ("anthropic", "1", "5", "0.10"),
    "claude-sonnet-4-5": ("anthropic", "3", "15", "0.30"),
    "claude-opus-4-5": ("anthropic", "5", "25", "0.50"),
    "claude-opus-4-1": ("anthropic", "15", "75", "1.50"),
    "gpt-4o": ("openai", "2.50", "10", "1.25"),
    "gpt-4o-mini": ("openai", "0.15", "0.60", "0.075"),
    "gpt-4.1": ("openai", "2", "8", "0.50"),
    "gpt-4.1-mini": ("openai", "0.40", "1.60", "0.10"),
    "gpt-5": ("openai", "1.25", "10", "0.125"),
    "gpt-5-mini": ("openai", "0.25", "2", "0.025"),
    "o3": ("openai", "2", "8", "0.50"),
    "o4-mini": ("openai", "1.10", "4.40", "0.275"),
}
# Anthropic cache writes, USD per million: (5 minutes, 1 hour).
ANTHROPIC_WRITES = {
    "claude-haiku-4-5": ("1.25", "2"),
    "claude-sonnet-4-5": ("3.75", "6"),
    "claude-opus-4-5": ("6.25", "10"),
    "claude-opus-4-1": ("18.75", "30"),
}


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.default()


def per_million(rate: Decimal) -> Decimal:
    return rate * MILLION


def spec(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "litellm_provider": "openai",
        "input_cost_per_token": "0.000002",
        "output_cost_per_token": "0.000008",
    }
    entry.update(overrides)
    return {key: value for key, value in entry.items() if value is not None}


# --- packaged table ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_given_packaged_table_when_model_looked_up_then_published_prices_and_provider_match(
    table: PriceTable, model: str
) -> None:
    provider, input_price, output_price, cache_read = PUBLISHED[model]
    price = table.get(model)
    assert price.provider == provider
    assert per_million(price.rates.input) == Decimal(input_price)
    assert per_million(price.rates.output) == Decimal(output_price)
    assert per_million(price.rates.cache_read) == Decimal(cache_read)
    assert price.rates.reasoning == price.rates.output


@pytest.mark.parametrize("model", sorted(ANTHROPIC_WRITES))
def test_given_claude_model_when_looked_up_then_cache_writes_are_1_25x_and_2x_input(
    table: PriceTable, model: str
) -> None:
    five_minutes, one_hour = ANTHROPIC_WRITES[model]
    rates = table.get(model).rates
    assert per_million(rates.cache_write_5m) == Decimal(five_minutes)
    assert per_million(rates.cache_write_1h) == Decimal(one_hour)


def test_given_sonnet_4_5_when_looked_up_then_long_context_tier_starts_above_200k(table: PriceTable) -> None:
    sonnet = table.get("claude-sonnet-4-5")
    assert sonnet.long_context_threshold == 200_000
    assert sonnet.long_context_rates is not None
    tier = sonnet.long_context_rates
    assert (per_million(tier.input), per_million(tier.output)) == (Decimal("6"), Decimal("22.50"))
    assert per_million(tier.cache_read) == Decimal("0.60")
    assert per_million(tier.cache_write_5m) == Decimal("7.50")
    assert per_million(tier.cache_write_1h) == Decimal("12")
    assert sonnet.rates_for(200_000) is sonnet.rates
    assert sonnet.rates_for(200_001) is tier


def test_given_packaged_table_when_listed_then_every_design_model_is_priced_and_sorted(
    table: PriceTable,
) -> None:
    names = [price.model for price in table.models()]
    assert set(PUBLISHED) <= set(names)
    assert names == sorted(names)


def test_given_packaged_json_when_read_then_every_price_is_a_string() -> None:
    from importlib import resources

    raw = json.loads(resources.files("costbrake").joinpath("data", "prices.json").read_text(encoding="utf-8"))
    for model, entry in raw.items():
        for key, value in entry.items():
            if key in ("max_input_tokens", "max_output_tokens"):
                assert isinstance(value, int), f"{model}.{key} is a token count"
            elif key == "search_context_cost_per_query":
                assert all(isinstance(v, str) for v in value.values()), f"{model}.{key} must be strings"
            else:
                assert isinstance(value, str), f"{model}.{key} must be a string to stay exact"


def test_given_default_called_twice_when_compared_then_the_same_table_is_reused() -> None:
    assert PriceTable.default() is PriceTable.default()


# --- loading rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_entry",
    [
        spec(input_cost_per_token=None),
        spec(output_cost_per_token=None),
        spec(input_cost_per_token="0"),
        spec(output_cost_per_token=0),
        spec(output_cost_per_token="-0.000001"),
        spec(input_cost_per_token="NaN"),
        spec(input_cost_per_token="Infinity"),
        spec(input_cost_per_token="free"),
        spec(input_cost_per_token=True),
        spec(cache_read_input_token_cost="0"),
        spec(litellm_provider=None),
        spec(input_cost_per_token_above_200k_tokens="0.000004"),  # tier without an output price
        spec(
            input_cost_per_token_above_128k_tokens="0.000004",
            output_cost_per_token_above_128k_tokens="0.00001",
            input_cost_per_token_above_200k_tokens="0.000004",
            output_cost_per_token_above_200k_tokens="0.00001",
        ),
    ],
)
def test_given_missing_or_non_positive_price_when_table_loads_then_it_is_rejected(
    bad_entry: dict[str, Any],
) -> None:
    with pytest.raises(PriceDataError):
        PriceTable.from_dict({"good": spec(), "bad": bad_entry})


def test_given_non_object_entry_when_table_loads_then_it_is_rejected() -> None:
    with pytest.raises(PriceDataError):
        PriceTable.from_dict({"bad": "0.000001"})


def test_given_litellm_float_entry_when_loaded_then_rates_are_exact_decimals() -> None:
    litellm_entry = {
        "litellm_provider": "anthropic",
        "mode": "chat",
        "max_input_tokens": 200000,
        "supports_vision": True,
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_creation_input_token_cost_above_1hr": 6e-06,
        "input_cost_per_token_above_200k_tokens": 6e-06,
        "output_cost_per_token_above_200k_tokens": 2.25e-05,
        "input_cost_per_token_priority": 9e-06,
    }
    price = PriceTable.from_dict({"claude-x": litellm_entry}).get("claude-x")
    assert price.rates.input == Decimal("0.000003")
    assert price.rates.output == Decimal("0.000015")
    assert price.rates.cache_write_5m == Decimal("0.00000375")
    assert price.long_context_threshold == 200_000
    assert price.long_context_rates is not None
    assert price.long_context_rates.output == Decimal("0.0000225")
    # Tier cache rates absent: Anthropic's documented multipliers apply to the tier's input price.
    assert price.long_context_rates.cache_read == Decimal("0.0000006")
    assert price.long_context_rates.cache_write_5m == Decimal("0.0000075")
    assert price.long_context_rates.cache_write_1h == Decimal("0.000012")


def test_given_openai_entry_without_cache_rate_when_loaded_then_cached_tokens_pay_full_input() -> None:
    price = PriceTable.from_dict({"m": spec()}).get("m")
    assert price.rates.cache_read == price.rates.input


def test_given_separate_reasoning_rate_when_priced_then_reasoning_tokens_use_it() -> None:
    price = PriceTable.from_dict({"m": spec(output_cost_per_reasoning_token="0.00001")}).get("m")
    usage = Usage(input_tokens=0, output_tokens=100, reasoning_tokens=60)
    # 40 visible x $8/M = 0.00032; 60 reasoning x $10/M = 0.0006
    assert cost_of(price, usage) == Decimal("0.00092")
    # The reservation assumes every output token may be the dearer kind: 100 x $10/M
    assert worst_case_cost(price, 0, 100, service_tier="default") == Decimal("0.001")


def test_given_table_when_exported_and_reloaded_then_it_is_unchanged(table: PriceTable) -> None:
    exported = json.loads(json.dumps(table.to_dict()))
    assert PriceTable.from_dict(exported).models() == table.models()


def test_given_inconsistent_tier_when_model_price_built_then_it_is_rejected(table: PriceTable) -> None:
    rates = table.get("gpt-4o").rates
    with pytest.raises(PriceDataError):
        ModelPrice(model="m", provider="openai", rates=rates, long_context_threshold=1000)
    with pytest.raises(PriceDataError):
        ModelPrice(model="m", provider="", rates=rates)


# --- lookups and overrides ----------------------------------------------------------------------------------


def test_given_dated_snapshot_when_looked_up_then_it_is_priced_as_its_base(table: PriceTable) -> None:
    def same(a: ModelPrice, b: ModelPrice) -> bool:
        return a.to_spec() == b.to_spec()

    assert same(table.get("claude-sonnet-4-5-20250929"), table.get("claude-sonnet-4-5"))
    assert same(table.get("gpt-4o-2024-08-06"), table.get("gpt-4o"))
    assert same(table.get("gpt-4o-mini-2024-07-18"), table.get("gpt-4o-mini"))
    assert table.get("o4-mini-2030-01-01") is table.get("o4-mini")  # an unknown snapshot falls back to its base
    assert "o3-2025-04-16" in table


def test_given_snapshot_with_its_own_price_when_looked_up_then_its_entry_wins(table: PriceTable) -> None:
    snapshot = table.get("gpt-4o-2024-05-13")
    assert snapshot.model == "gpt-4o-2024-05-13"
    assert per_million(snapshot.rates.input) == Decimal("5")


def test_given_unknown_model_when_looked_up_then_unknown_model_carries_the_name(table: PriceTable) -> None:
    with pytest.raises(UnknownModel) as raised:
        table.get("gpt-9")
    assert raised.value.model == "gpt-9"
    assert raised.value.status == 400
    assert "gpt-9" not in table
    assert 42 not in table


def test_given_override_when_applied_then_new_table_prices_it_and_original_is_unchanged(
    table: PriceTable,
) -> None:
    cheaper = ModelPrice.from_spec("gpt-4o", spec(input_cost_per_token="0.000001"))
    added = ModelPrice.from_spec("my-finetune", spec())
    overridden = table.with_overrides([cheaper, added])
    assert overridden.get("gpt-4o").rates.input == Decimal("0.000001")
    assert overridden.get("gpt-4o-2024-08-06").rates.input == Decimal("0.000001")
    assert "my-finetune" in overridden
    assert table.get("gpt-4o").rates.input == Decimal("0.0000025")
    assert "my-finetune" not in table


# --- usage parsing ----------------------------------------------------------------------------------------


def test_given_openai_usage_with_null_details_when_parsed_then_details_count_as_zero() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "prompt_tokens_details": None,
            "completion_tokens_details": None,
        }
    )
    assert usage == Usage(input_tokens=10, output_tokens=5)


def test_given_openai_cached_usage_when_parsed_then_cached_tokens_leave_the_uncached_count() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1920},
            "completion_tokens_details": {"reasoning_tokens": 128},
        }
    )
    assert usage == Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920, reasoning_tokens=128)
    assert usage.total_input_tokens == 2006


@pytest.mark.parametrize(
    "bad_usage",
    [
        {"completion_tokens": 5},
        {"prompt_tokens": 5},
        {"prompt_tokens": -1, "completion_tokens": 5},
        {"prompt_tokens": "10", "completion_tokens": 5},
        {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 11}},
        {"prompt_tokens": 10, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 6}},
    ],
)
def test_given_malformed_openai_usage_when_parsed_then_it_is_refused(bad_usage: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        usage_from_openai(bad_usage)


def test_given_anthropic_usage_with_split_cache_writes_when_parsed_then_each_ttl_is_kept() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 7,
            "output_tokens": 9,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "output_tokens_details": {"thinking_tokens": 4},
        }
    )
    assert usage == Usage(
        input_tokens=7,
        output_tokens=9,
        cache_read_tokens=100,
        cache_write_5m_tokens=100,
        cache_write_1h_tokens=200,
        reasoning_tokens=4,
    )
    assert usage.total_input_tokens == 407


def test_given_anthropic_usage_with_only_total_cache_creation_when_parsed_then_writes_are_5m() -> None:
    usage = usage_from_anthropic({"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 50})
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (50, 0)


@pytest.mark.parametrize(
    "bad_usage",
    [{"output_tokens": 1}, {"input_tokens": 1}, {"input_tokens": 1, "output_tokens": 1.5}],
)
def test_given_malformed_anthropic_usage_when_parsed_then_it_is_refused(bad_usage: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        usage_from_anthropic(bad_usage)


def test_given_negative_counts_when_costed_then_they_are_refused(table: PriceTable) -> None:
    with pytest.raises(ValueError):
        cost_of(table.get("gpt-4o"), Usage(input_tokens=-1))
    with pytest.raises(ValueError):
        worst_case_cost(table.get("gpt-4o"), 10, -1)


def test_given_zero_usage_when_costed_then_cost_is_exactly_zero(table: PriceTable) -> None:
    assert cost_of(table.get("gpt-4o"), Usage()) == Decimal(0)


# --- context windows, service tiers, web search, embeddings -------------------------------------------------


def test_given_packaged_table_when_counted_then_over_a_hundred_chat_models_and_the_embeddings_are_priced(
    table: PriceTable,
) -> None:
    chat = [p for p in table.models() if p.mode in ("chat", "responses")]
    assert len(chat) >= 100
    assert {p.provider for p in chat} == {"openai", "anthropic"}
    assert {p.model for p in table.models() if p.is_embedding} >= {"text-embedding-3-small", "text-embedding-3-large"}
    for model in ("claude-opus-4-6", "claude-sonnet-4-6", "gpt-5.1", "gpt-5-nano", "gpt-4.1-nano", "o1", "o3-mini"):
        assert model in table
    assert "claude-sonnet-4-20250514" in table and "claude-3-5-haiku-latest" in table


@pytest.mark.parametrize(
    ("model", "window", "most_output"),
    [("claude-opus-4-6", 1_000_000, 128_000), ("gpt-4o", 128_000, 16_384), ("claude-sonnet-4-5", 1_000_000, 64_000)],
)
def test_given_model_when_looked_up_then_its_context_window_and_output_limit_are_known(
    table: PriceTable, model: str, window: int, most_output: int
) -> None:
    price = table.get(model)
    assert (price.max_input_tokens, price.max_output_tokens) == (window, most_output)


def test_given_gpt_4o_when_tiers_looked_up_then_data_rates_apply_and_flex_defaults_to_standard(
    table: PriceTable,
) -> None:
    gpt_4o = table.get("gpt-4o")
    priority = gpt_4o.tier_rates("priority").rates
    assert (per_million(priority.input), per_million(priority.output)) == (Decimal("4.25"), Decimal("17"))
    assert per_million(priority.cache_read) == Decimal("2.125")
    batch = gpt_4o.tier_rates("batch").rates
    assert (per_million(batch.input), per_million(batch.output)) == (Decimal("1.25"), Decimal("5"))
    # No flex price for gpt-4o in the data: no discount we cannot see.
    assert gpt_4o.tier_rates("flex").rates == gpt_4o.rates


def test_given_tier_without_data_when_looked_up_then_openai_priority_is_twice_and_anthropic_priority_is_list(
    table: PriceTable,
) -> None:
    o1 = table.get("o1")
    assert "priority" not in dict(o1.service_tiers)
    assert o1.tier_rates("priority").rates.input == 2 * o1.rates.input
    assert o1.tier_rates("priority").rates.output == 2 * o1.rates.output
    opus = table.get("claude-opus-4-6")
    assert opus.tier_rates("priority").rates == opus.rates


def test_given_unknown_reported_tier_when_priced_then_the_dearest_tier_applies_rate_by_rate(table: PriceTable) -> None:
    gpt_5 = table.get("gpt-5")
    usage = Usage(input_tokens=1000, output_tokens=1000, service_tier="ultrafast")
    # priority is gpt-5's dearest tier: 1000 x $2.50/M + 1000 x $20/M
    assert cost_of(gpt_5, usage) == Decimal("0.0225")


def test_given_long_context_model_when_priority_has_no_long_rates_then_the_tier_ratio_carries_over(
    table: PriceTable,
) -> None:
    gpt_55 = table.get("gpt-5.5")
    assert gpt_55.long_context_threshold == 272_000
    long_priority = gpt_55.tier_rates("priority").long_context_rates
    assert long_priority is not None
    # standard $5 -> priority $12.50 is 2.5x; above 272k standard is $10, so priority is $25 (not 2 x $10).
    assert per_million(long_priority.input) == Decimal("25")


def test_given_web_search_prices_when_looked_up_then_per_use_price_or_provider_default_applies(
    table: PriceTable,
) -> None:
    assert table.get("claude-sonnet-4-5").web_search_price == Decimal("0.01")
    assert table.get("claude-haiku-4-5").web_search_per_use is None
    assert table.get("claude-haiku-4-5").web_search_price == Decimal("0.01")  # $10 per 1,000, every model
    assert table.get("gpt-4o-mini").web_search_price == Decimal("0.025")
    assert table.get("gpt-5").web_search_price == Decimal("0.01")


def test_given_search_cost_by_context_size_when_loaded_then_the_dearest_size_is_the_price() -> None:
    sizes = {"search_context_size_low": 0.025, "search_context_size_medium": 0.0275, "search_context_size_high": 0.03}
    price = ModelPrice.from_spec("m", spec(search_context_cost_per_query=sizes))
    assert price.web_search_per_use == Decimal("0.03")
    with pytest.raises(PriceDataError):
        ModelPrice.from_spec("m", spec(search_context_cost_per_query={"search_context_size_low": 0.0}))


def test_given_embedding_model_when_loaded_then_zero_output_is_allowed_only_there() -> None:
    embedding = ModelPrice.from_spec("e", spec(mode="embedding", output_cost_per_token=0.0))
    assert embedding.rates.output == 0
    # Output an embedding never reports is charged as input all the same: nothing is free.
    assert cost_of(embedding, Usage(input_tokens=10, output_tokens=5)) == 15 * Decimal("0.000002")
    with pytest.raises(PriceDataError):
        ModelPrice.from_spec("c", spec(mode="chat", output_cost_per_token=0.0))
    with pytest.raises(PriceDataError):
        ModelPrice.from_spec("x", spec(mode="image_generation"))


@pytest.mark.parametrize("bad", [0, -5, 1.5, "many", True])
def test_given_bad_context_window_when_loaded_then_it_is_rejected(bad: Any) -> None:
    with pytest.raises(PriceDataError):
        ModelPrice.from_spec("m", spec(max_input_tokens=bad))


def test_given_every_packaged_price_when_spec_round_trips_then_it_is_unchanged(table: PriceTable) -> None:
    for price in table.models():
        assert ModelPrice.from_spec(price.model, json.loads(json.dumps(price.to_spec()))) == price


def test_given_override_of_base_when_applied_then_snapshots_priced_as_the_base_follow_it(table: PriceTable) -> None:
    raised = ModelPrice.from_spec("gpt-4o", spec(input_cost_per_token="0.000003", output_cost_per_token="0.000012"))
    overridden = table.with_overrides([raised])
    assert overridden.get("gpt-4o-2024-11-20").rates.input == Decimal("0.000003")
    assert overridden.get("gpt-4o-2024-05-13").rates.input == Decimal("0.000005")  # its own launch price stays


# --- service tiers of requests and responses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "requested", "tiers"),
    [
        ("openai", None, ("standard", "priority")),
        ("openai", "auto", ("standard", "priority")),
        ("openai", "default", ("standard",)),
        ("openai", "flex", ("flex",)),
        ("openai", "priority", ("priority", "standard")),
        ("anthropic", None, ("standard", "priority")),
        ("anthropic", "standard_only", ("standard",)),
    ],
)
def test_given_requested_service_tier_when_read_then_every_tier_it_may_be_billed_at_is_listed(
    provider: str, requested: str | None, tiers: tuple[str, ...]
) -> None:
    assert requested_tiers(provider, requested) == tiers


@pytest.mark.parametrize(("provider", "requested"), [("openai", "turbo"), ("anthropic", "flex-ish"), ("openai", "")])
def test_given_undocumented_service_tier_when_read_then_it_is_refused(provider: str, requested: str) -> None:
    with pytest.raises(ValueError):
        requested_tiers(provider, requested)


@pytest.mark.parametrize(
    ("reported", "tier"),
    [("default", "standard"), ("auto", "standard"), ("standard", "standard"), ("scale", "standard"),
     ("priority", "priority"), ("Flex", "flex"), ("batch", "batch"), (None, None), ("", None), (7, None),
     ("ultrafast", "ultrafast")],
)  # fmt: skip
def test_given_reported_service_tier_when_normalised_then_provider_words_map_to_neutral_tiers(
    reported: Any, tier: str | None
) -> None:
    assert billed_tier(reported) == tier


def test_given_openai_usage_with_tier_and_searches_when_parsed_then_both_are_kept() -> None:
    usage = usage_from_openai(
        {"prompt_tokens": 10, "completion_tokens": 5}, service_tier="priority", web_search_requests=1
    )
    assert (usage.service_tier, usage.web_search_requests) == ("priority", 1)
    assert usage_from_openai({"prompt_tokens": 1, "completion_tokens": 1}, service_tier="default").service_tier == (
        "standard"
    )


def test_given_anthropic_usage_with_tier_and_server_tool_use_when_parsed_then_both_are_kept() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 5,
            "output_tokens": 7,
            "service_tier": "priority",
            "server_tool_use": {"web_search_requests": 3},
        }
    )
    assert (usage.service_tier, usage.web_search_requests) == ("priority", 3)


def test_given_bad_web_search_count_when_parsed_then_it_is_refused() -> None:
    with pytest.raises(ValueError):
        usage_from_anthropic({"input_tokens": 1, "output_tokens": 1, "server_tool_use": {"web_search_requests": -1}})


# --- model families ------------------------------------------------------------------------------------------

DOWNGRADES = {"gpt-4o": "gpt-4o-mini", "claude-sonnet-4-5": "claude-haiku-4-5", "claude-sonnet-4": "claude-haiku-4-5"}


@pytest.mark.parametrize(
    ("model", "cheaper"),
    [
        ("gpt-4o", "gpt-4o-mini"),
        ("gpt-4o-2024-05-13", "gpt-4o-mini"),
        ("gpt-4o-2024-11-20", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-haiku-4-5"),
        ("claude-sonnet-4-20250514", "claude-haiku-4-5"),
        ("claude-sonnet-4-5-latest", "claude-haiku-4-5"),
        ("gpt-4o-mini", None),
        ("gpt-4o-mini-2024-07-18", None),
    ],
)
def test_given_dated_snapshot_when_downgraded_then_its_base_models_cheaper_model_is_used(
    model: str, cheaper: str | None
) -> None:
    assert downgrade_target(DOWNGRADES, model) == cheaper


def test_given_dated_snapshot_when_base_model_asked_then_the_family_name_is_returned(table: PriceTable) -> None:
    assert table.base_model("gpt-4o-2024-05-13") == "gpt-4o"
    assert table.base_model("claude-opus-4-6-20260205") == "claude-opus-4-6"
    assert table.base_model("gpt-4o") == "gpt-4o"
    assert table.base_model("claude-sonnet-4-20250514") == "claude-sonnet-4-20250514"  # no undated entry


def test_given_default_downgrade_and_auto_maps_then_each_target_is_priced_cheaper_and_of_the_same_provider(
    table: PriceTable,
) -> None:
    from costbrake.config import Settings

    for model, cheaper in Settings.model_fields["downgrade_map"].default.items():
        price = table.get(model) if model in table else table.get(f"{model}-20250514")
        target = table.get(cheaper)
        assert target.provider == price.provider, model
        assert target.rates.input < price.rates.input and target.rates.output < price.rates.output, model
    for provider, choices in Settings.model_fields["auto_models"].default.items():
        assert {table.get(model).provider for model in choices.values()} == {provider}
    assert Settings.model_fields["auto_models"].default["anthropic"]["critical"] == "claude-opus-4-6"


def test_given_responses_api_usage_when_parsed_then_it_is_read_as_chat_completions_are() -> None:
    usage = usage_from_openai_responses(
        {
            "input_tokens": 2006,
            "input_tokens_details": {"cached_tokens": 1920},
            "output_tokens": 300,
            "output_tokens_details": {"reasoning_tokens": 128},
            "total_tokens": 2306,
        },
        service_tier="default",
        web_search_requests=2,
    )
    assert usage == Usage(
        input_tokens=86,
        output_tokens=300,
        cache_read_tokens=1920,
        reasoning_tokens=128,
        service_tier="standard",
        web_search_requests=2,
    )
    with pytest.raises(ValueError):
        usage_from_openai_responses({"input_tokens": 5})


def test_given_embeddings_usage_when_parsed_and_priced_then_prompt_tokens_pay_the_input_rate(table: PriceTable) -> None:
    usage = usage_from_openai_embeddings({"prompt_tokens": 1000, "total_tokens": 1000})
    assert usage == Usage(input_tokens=1000)
    # 1000 x $0.13/M
    assert cost_of(table.get("text-embedding-3-large"), usage) == Decimal("0.00013")
    with pytest.raises(ValueError):
        usage_from_openai_embeddings({"total_tokens": 3})
