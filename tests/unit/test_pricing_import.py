"""Reading LiteLLM's price map and comparing it with the prices in effect."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from costbrake.pricing import ModelPrice, PriceTable
from costbrake.pricing_generate import OVERRIDES, apply_overrides, generate, table_json
from costbrake.pricing_import import (
    AUDIO,
    DUPLICATE,
    FINE_TUNE,
    NOT_CHAT,
    OTHER_PROVIDER,
    UNUSABLE,
    ImportedPrices,
    PriceImportError,
    RateChange,
    diff_prices,
    load_litellm,
    parse_litellm,
    per_million,
    rate_changes,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "litellm_prices_sample.json"
M = Decimal("0.000001")  # one USD per million tokens, per token


@pytest.fixture(scope="module")
def sample() -> ImportedPrices:
    return load_litellm(SAMPLE)


def entry(**fields: Any) -> dict[str, Any]:
    return {"litellm_provider": "openai", "mode": "chat", **fields}


def test_given_litellm_file_when_parsed_then_only_openai_and_anthropic_chat_models_are_kept(sample):
    assert sorted(sample.prices) == [
        "chatgpt-4o-latest",
        "claude-3-5-haiku-20241022",
        "claude-haiku-4-5-20251001",
        "claude-opus-4-1",  # "anthropic/claude-opus-4-1" without its provider prefix
        "claude-sonnet-4-5",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
        "o3",
        "text-embedding-3-small",  # embeddings are served (an input price only)
    ]
    # sample_spec, azure/…, bedrock/… | dall-e | ft:… | openai/gpt-4o-mini
    assert sample.skipped == {OTHER_PROVIDER: 3, NOT_CHAT: 1, FINE_TUNE: 1, DUPLICATE: 1}
    assert sample.prices["text-embedding-3-small"].is_embedding
    assert sample.unusable == {}


def test_given_float_prices_when_parsed_then_per_million_prices_are_exact(sample):
    nano, sonnet = sample.prices["gpt-4.1-nano"], sample.prices["claude-sonnet-4-5"]

    assert (nano.rates.input, nano.rates.output, nano.rates.cache_read) == (
        Decimal("0.10") * M,
        Decimal("0.40") * M,
        Decimal("0.025") * M,
    )
    assert [per_million(r) for r in (nano.rates.input, nano.rates.output, nano.rates.cache_read)] == [
        "0.1",
        "0.4",
        "0.025",
    ]
    assert sonnet.long_context_threshold == 200_000
    tier = sonnet.long_context_rates
    assert tier is not None
    assert (tier.input, tier.output, tier.cache_read, tier.cache_write_5m, tier.cache_write_1h) == (
        6 * M,
        Decimal("22.50") * M,
        Decimal("0.60") * M,
        Decimal("7.50") * M,
        12 * M,
    )


def test_given_current_table_when_diffed_then_added_changed_unchanged_and_missing_are_listed(sample):
    current = PriceTable(
        [
            *(sample.prices[m] for m in ("claude-opus-4-1", "claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini")),
            replace(sample.prices["claude-haiku-4-5-20251001"], model="claude-haiku-4-5"),
            PriceTable.default().get("o3"),
            PriceTable.default().get("gpt-5"),
        ]
    )
    diff = diff_prices(current, sample.prices)

    assert [p.model for p in diff.added] == [
        "chatgpt-4o-latest",
        "claude-3-5-haiku-20241022",
        "gpt-4.1-nano",
        "text-embedding-3-small",
    ]
    assert [c.model for c in diff.changed] == ["o3"]
    assert diff.unchanged == [
        "claude-haiku-4-5-20251001",  # a dated snapshot priced like its base model needs no entry
        "claude-opus-4-1",
        "claude-sonnet-4-5",
        "gpt-4o",
        "gpt-4o-mini",
    ]
    # claude-haiku-4-5 is in the file as its dated snapshot (listed unchanged above), so it is not "missing".
    assert diff.not_in_file == ["gpt-5"]
    o3 = {change.rate: (change.old, change.new) for change in diff.changed[0].changes}
    assert o3["input"] == (2 * M, 10 * M) and o3["output"] == (8 * M, 40 * M)
    assert o3["cache read"] == (Decimal("0.50") * M, Decimal("2.50") * M)
    assert [p.model for p in diff.to_apply] == [
        "chatgpt-4o-latest",
        "claude-3-5-haiku-20241022",
        "gpt-4.1-nano",
        "text-embedding-3-small",
        "o3",
    ]
    # The file has no priority price for o3: the change shows what priority calls would be charged.
    assert o3["input priority"] == (Decimal("3.5") * M, 20 * M)
    fields = {change.name: (change.old, change.new) for change in diff.changed[0].fields}
    assert fields["web search per use (USD)"] == ("0.01", "0.025")


def test_given_ledger_override_when_file_has_the_packaged_price_then_the_override_is_what_changes(sample):
    raised = ModelPrice.from_spec(
        "gpt-4o",
        {"litellm_provider": "openai", "input_cost_per_token": "0.000003", "output_cost_per_token": "0.000012"},
    )
    effective = PriceTable.default().with_overrides([raised])

    diff = diff_prices(effective, {"gpt-4o": sample.prices["gpt-4o"]})

    changes = {change.rate: (change.old, change.new) for change in diff.changed[0].changes}
    assert changes["input"] == (3 * M, Decimal("2.5") * M) and changes["output"] == (12 * M, 10 * M)


def test_given_long_context_tier_moved_then_old_tier_removed_and_new_tier_added():
    base = {"litellm_provider": "anthropic", "input_cost_per_token": "3E-6", "output_cost_per_token": "1.5E-5"}
    old = ModelPrice.from_spec(
        "m",
        base | {"input_cost_per_token_above_200k_tokens": "6E-6", "output_cost_per_token_above_200k_tokens": "2.25E-5"},
    )
    new = ModelPrice.from_spec(
        "m",
        base | {"input_cost_per_token_above_128k_tokens": "6E-6", "output_cost_per_token_above_128k_tokens": "2.25E-5"},
    )

    changes = rate_changes(old, new)

    assert RateChange("input above 200k", 6 * M, None) in changes
    assert RateChange("input above 128k", None, 6 * M) in changes
    assert not [c for c in changes if "above" not in c.rate]


def test_given_negative_price_then_the_file_is_refused_naming_the_model():
    text = json.dumps({"gpt-4o": entry(input_cost_per_token=-2.5e-06, output_cost_per_token=1e-05)})

    with pytest.raises(PriceImportError, match=r"gpt-4o: input_cost_per_token is negative"):
        parse_litellm(text)


def test_given_price_above_a_thousand_dollars_per_million_then_the_file_is_refused_naming_the_model():
    text = json.dumps(
        {
            "anthropic/claude-x": entry(
                litellm_provider="anthropic", input_cost_per_token=3e-06, output_cost_per_token=0.0015
            )
        }
    )

    with pytest.raises(PriceImportError, match=r"anthropic/claude-x: output_cost_per_token is \$1500 per million"):
        parse_litellm(text)


def test_given_exactly_a_thousand_dollars_per_million_then_it_is_accepted():
    parsed = parse_litellm(json.dumps({"o1-pro": entry(input_cost_per_token=1.5e-04, output_cost_per_token=1e-03)}))

    assert parsed.prices["o1-pro"].rates.output == 1000 * M


def test_given_absurd_price_of_another_provider_then_it_is_only_skipped():
    parsed = parse_litellm(json.dumps({"x/y": entry(litellm_provider="other", input_cost_per_token=-1.0)}))

    assert parsed.prices == {} and parsed.skipped == {OTHER_PROVIDER: 1}


def test_given_chat_model_without_usable_prices_then_it_is_skipped_with_the_reason():
    parsed = parse_litellm(
        json.dumps(
            {
                "gpt-free": entry(input_cost_per_token=0.0, output_cost_per_token=0.0),
                "gpt-no-output": entry(input_cost_per_token=1e-06),
                "gpt-4o": entry(input_cost_per_token=2.5e-06, output_cost_per_token=1e-05),
            }
        )
    )

    assert list(parsed.prices) == ["gpt-4o"]
    assert parsed.skipped == {UNUSABLE: 2}
    assert "must be positive" in parsed.unusable["gpt-free"]
    assert "needs both" in parsed.unusable["gpt-no-output"]


@pytest.mark.parametrize("text", ["not json", "[1, 2]"])
def test_given_a_file_that_is_not_a_price_map_then_it_is_refused(text):
    with pytest.raises(PriceImportError):
        parse_litellm(text)


def test_given_model_priced_per_audio_token_then_it_is_skipped_not_charged_at_the_text_rate():
    audio = entry(input_cost_per_token=2.5e-06, output_cost_per_token=1e-05, input_cost_per_audio_token=4e-05)
    parsed = parse_litellm(
        json.dumps({"gpt-audio": audio, "gpt-4o": entry(input_cost_per_token=2.5e-06, output_cost_per_token=1e-05)})
    )

    assert list(parsed.prices) == ["gpt-4o"] and parsed.skipped == {AUDIO: 1}


def test_given_litellm_tiers_and_limits_then_they_are_imported_exactly():
    spec = entry(
        input_cost_per_token=1.25e-06,
        output_cost_per_token=1e-05,
        input_cost_per_token_priority=2.5e-06,
        output_cost_per_token_priority=2e-05,
        input_cost_per_token_flex=6.25e-07,
        output_cost_per_token_flex=5e-06,
        max_input_tokens=272000,
        max_output_tokens=128000,
        search_context_cost_per_query={"search_context_size_low": 0.01, "search_context_size_high": 0.01},
    )
    price = parse_litellm(json.dumps({"gpt-5": spec})).prices["gpt-5"]

    assert price.tier_rates("priority").rates.output == 20 * M
    assert price.tier_rates("flex").rates.input == Decimal("0.625") * M
    assert (price.max_input_tokens, price.max_output_tokens) == (272_000, 128_000)
    assert price.web_search_per_use == Decimal("0.01")


# --- the generator ----------------------------------------------------------------------------------------


def test_given_overrides_when_merged_then_fields_replace_null_removes_and_new_models_are_added():
    litellm = {
        "gpt-5-nano": entry(
            input_cost_per_token=5e-08, output_cost_per_token=4e-07, input_cost_per_token_priority=2.5e-06
        )
    }
    overrides = {
        "gpt-5-nano": {"why": "bad priority price", "input_cost_per_token_priority": None, "max_input_tokens": 272000},
        "claude-x": {"why": "missing", "litellm_provider": "anthropic", "mode": "chat",
                     "input_cost_per_token": "0.000001", "output_cost_per_token": "0.000005"},
    }  # fmt: skip

    merged, overridden, added = apply_overrides(litellm, overrides)

    assert "input_cost_per_token_priority" not in merged["gpt-5-nano"]
    assert merged["gpt-5-nano"]["max_input_tokens"] == 272000
    assert (overridden, added) == (["gpt-5-nano"], ["claude-x"])
    with pytest.raises(PriceImportError):
        apply_overrides(litellm, {"gpt-5-nano": {"max_input_tokens": 1}})  # an override must say why


def test_given_sample_map_and_packaged_overrides_when_generated_then_the_table_loads_back_identically():
    overrides = json.loads(OVERRIDES.read_text(encoding="utf-8"))

    generated = generate(SAMPLE.read_text(encoding="utf-8"), overrides)
    reloaded = PriceTable.from_dict(json.loads(table_json(generated.table)))

    assert reloaded.models() == generated.table.models()
    sonnet = reloaded.get("claude-sonnet-4-5")
    assert sonnet.long_context_threshold == 200_000 and sonnet.max_input_tokens == 1_000_000
    assert {"claude-sonnet-4-20250514", "claude-3-5-haiku-latest"} <= set(generated.added)
    assert "claude-opus-4-1" in generated.overridden  # the sample has it (as anthropic/claude-opus-4-1)


def test_given_packaged_table_then_every_override_is_in_it():
    table = PriceTable.default()
    for model, fields in json.loads(OVERRIDES.read_text(encoding="utf-8")).items():
        spec = table.get(model).to_spec()
        for name, value in fields.items():
            if name in ("why", "search_context_cost_per_query") or value is None:
                continue
            if name in ("litellm_provider", "mode") or isinstance(value, int):
                assert spec[name] == value, (model, name)
            else:
                assert Decimal(spec[name]) == Decimal(value), (model, name)
    assert "priority" not in dict(table.get("gpt-5-nano").service_tiers)
