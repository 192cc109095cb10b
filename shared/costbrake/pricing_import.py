"""Refreshing prices from LiteLLM's community price map (``model_prices_and_context_window.json``).

Only OpenAI and Anthropic models the gateway serves are kept (``mode`` chat, responses or embedding);
every other entry is counted by why it was skipped. Models priced per audio token are skipped too: the
gateway does not meter audio, so it would charge their audio at the text rate. Numbers are read as
``Decimal`` straight from the JSON text, so a per-token price of ``2.5e-06`` is exactly $2.50 per
million. A negative price or one above ``MAX_USD_PER_MILLION`` refuses the whole file: such a file is
broken, and importing part of it would charge calls at prices nobody checked.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from costbrake.errors import UnknownModel
from costbrake.formatting import plain_decimal
from costbrake.pricing import MODES, PRICED_TIERS, STANDARD, ModelPrice, PriceDataError, PriceTable, TokenRates

SUPPORTED_PROVIDERS = ("openai", "anthropic")
SUPPORTED_MODES = MODES  # chat, responses, embedding
MILLION = Decimal(1_000_000)
MAX_USD_PER_MILLION = Decimal(1000)
_MAX_PER_TOKEN = MAX_USD_PER_MILLION / MILLION
_FINE_TUNE_PREFIX = "ft:"  # LiteLLM's price templates for fine-tuned models, not callable names

# Why an entry was left out, as shown to the operator.
OTHER_PROVIDER = "other provider"
NOT_CHAT = "not a chat, responses or embedding model"
AUDIO = "priced per audio token (not metered)"
FINE_TUNE = "fine-tuning template"
ROUTED_NAME = "provider-routed name"
DUPLICATE = "duplicate of an unprefixed entry"
UNUSABLE = "no usable token prices"

# Rate names in the order people read them (LiteLLM's field names, as in ``ModelPrice.to_spec``).
RATE_LABELS = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache read",
    "cache_creation_input_token_cost": "cache write 5m",
    "cache_creation_input_token_cost_above_1hr": "cache write 1h",
    "output_cost_per_reasoning_token": "reasoning",
}


class PriceImportError(ValueError):
    """The file cannot be imported (not LiteLLM's format, or a price no provider charges)."""


@dataclass(frozen=True)
class ImportedPrices:
    """The usable prices of a LiteLLM file and what was left out."""

    prices: dict[str, ModelPrice]
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> entries
    unusable: dict[str, str] = field(default_factory=dict)  # model -> why (chat models of our providers)


def load_litellm(path: Path) -> ImportedPrices:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PriceImportError(f"cannot read {path}: {error.strerror or error}") from error
    return parse_litellm(text)


def parse_litellm(text: str) -> ImportedPrices:
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise PriceImportError(f"not JSON: {error}") from error
    return parse_litellm_data(data)


def parse_litellm_data(data: Any) -> ImportedPrices:
    """``parse_litellm`` of the parsed JSON (floats read as ``Decimal``)."""
    if not isinstance(data, dict):
        raise PriceImportError("not LiteLLM's price map: the top level must be an object of models")
    prices: dict[str, ModelPrice] = {}
    prefixed: dict[str, ModelPrice] = {}
    skipped: Counter[str] = Counter()
    unusable: dict[str, str] = {}
    for key, spec in data.items():
        if not isinstance(spec, dict) or spec.get("litellm_provider") not in SUPPORTED_PROVIDERS:
            skipped[OTHER_PROVIDER] += 1
            continue
        provider = spec["litellm_provider"]
        if spec.get("mode") not in SUPPORTED_MODES:
            skipped[NOT_CHAT] += 1
            continue
        model = key.removeprefix(f"{provider}/")
        if model.startswith(_FINE_TUNE_PREFIX):
            skipped[FINE_TUNE] += 1
            continue
        if _priced_per_audio_token(spec):
            skipped[AUDIO] += 1
            continue
        if "/" in model:
            skipped[ROUTED_NAME] += 1
            continue
        _refuse_absurd(key, spec)
        try:
            price = ModelPrice.from_spec(model, spec)
        except PriceDataError as error:
            skipped[UNUSABLE] += 1
            unusable[key] = str(error)
            continue
        _refuse_absurd_rates(key, price)
        (prefixed if model != key else prices)[model] = price
    for model, price in prefixed.items():
        if model in prices:
            skipped[DUPLICATE] += 1
        else:
            prices[model] = price
    return ImportedPrices(prices=dict(sorted(prices.items())), skipped=skipped, unusable=unusable)


def _priced_per_audio_token(spec: Mapping[str, Any]) -> bool:
    return any("audio" in name and "cost" in name and value for name, value in spec.items())


def _refuse_absurd(key: str, spec: Mapping[str, Any]) -> None:
    for name, value in spec.items():
        if "cost" in name and isinstance(value, int | Decimal) and not isinstance(value, bool) and value < 0:
            raise PriceImportError(f"{key}: {name} is negative ({value}); refusing the file")


def _refuse_absurd_rates(key: str, price: ModelPrice) -> None:
    for tier in _tiers(price):
        for name, rate in _rate_items(tier):
            if rate > _MAX_PER_TOKEN:
                raise PriceImportError(
                    f"{key}: {name} is ${per_million(rate)} per million tokens, above the "
                    f"${MAX_USD_PER_MILLION} sanity limit; refusing the file"
                )


def _tiers(price: ModelPrice) -> Iterator[TokenRates]:
    for _, rates in labelled_tiers(price):
        yield rates


def labelled_tiers(price: ModelPrice) -> Iterator[tuple[str, TokenRates]]:
    """Every rate set of a price with its label suffix: "", " above 200k", " priority", " priority above 200k"."""
    long_label = _tier_label(price.long_context_threshold)
    for tier, tier_rates in ((STANDARD, price.tier_rates(STANDARD)), *price.service_tiers):
        tier_label = "" if tier == STANDARD else f" {tier}"
        yield tier_label, tier_rates.rates
        if tier_rates.long_context_rates is not None:
            yield tier_label + long_label, tier_rates.long_context_rates


def _rate_items(rates: TokenRates) -> Iterator[tuple[str, Decimal]]:
    yield "input_cost_per_token", rates.input
    yield "output_cost_per_token", rates.output
    yield "cache_read_input_token_cost", rates.cache_read
    yield "cache_creation_input_token_cost", rates.cache_write_5m
    yield "cache_creation_input_token_cost_above_1hr", rates.cache_write_1h
    yield "output_cost_per_reasoning_token", rates.reasoning


def per_million(rate: Decimal) -> str:
    """A per-token rate as USD per million tokens, exact and without trailing zeros (2.5, 0.075, 10)."""
    return plain_decimal(rate * MILLION)


def rates_per_million(rates: TokenRates) -> dict[str, str]:
    """Every rate of a tier as USD per million tokens, keyed by its readable name."""
    return {RATE_LABELS[name]: per_million(rate) for name, rate in _rate_items(rates)}


# ---- diff against the current table ---------------------------------------------------------------


@dataclass(frozen=True)
class RateChange:
    rate: str  # readable name, with the tier when it is the long-context one ("input above 200k")
    old: Decimal | None  # USD per token; None when the tier did not exist
    new: Decimal | None


@dataclass(frozen=True)
class ModelChange:
    model: str
    old: ModelPrice  # the price the model resolves to today (a dated snapshot may resolve to its base)
    new: ModelPrice
    changes: list[RateChange]
    fields: list[FieldChange] = field(default_factory=list)  # provider, mode, limits, web search


@dataclass(frozen=True)
class PriceDiff:
    added: list[ModelPrice]
    changed: list[ModelChange]
    unchanged: list[str]
    not_in_file: list[str]  # priced today, absent from the file: kept as they are

    @property
    def to_apply(self) -> list[ModelPrice]:
        return [*self.added, *(change.new for change in self.changed)]


def diff_prices(current: PriceTable, imported: Mapping[str, ModelPrice]) -> PriceDiff:
    """What storing ``imported`` would change in ``current`` (the effective table: packaged + overrides)."""
    added: list[ModelPrice] = []
    changed: list[ModelChange] = []
    unchanged: list[str] = []
    for model, new in sorted(imported.items()):
        try:
            old = current.get(model)
        except UnknownModel:
            added.append(new)
            continue
        changes, fields = rate_changes(old, new), field_changes(old, new)
        if changes or fields:
            changed.append(ModelChange(model, old, new, changes, fields))
        else:
            unchanged.append(model)
    # A dated snapshot in the file ("claude-haiku-4-5-20251001") speaks for the model it resolves to.
    covered = {current.get(model).model for model in imported if model in current} | set(imported)
    not_in_file = [price.model for price in current.models() if price.model not in covered]
    return PriceDiff(added=added, changed=changed, unchanged=unchanged, not_in_file=not_in_file)


def rate_changes(old: ModelPrice, new: ModelPrice) -> list[RateChange]:
    """Every rate that differs: standard tier first, then its long-context tier (which may appear, vanish or
    move), then each service tier as it is charged (the data's rates, or the default factor's)."""
    old_sets, new_sets = dict(effective_tiers(old)), dict(effective_tiers(new))
    labels = [*old_sets, *(label for label in new_sets if label not in old_sets)]
    changes: list[RateChange] = []
    for label in sorted(labels, key=lambda label: (_tier_order(label), labels.index(label))):
        before = dict(_rate_items(old_sets[label])) if label in old_sets else {}
        after = dict(_rate_items(new_sets[label])) if label in new_sets else {}
        changes += _tier_changes(label, before, after)
    return changes


def _tier_order(label: str) -> int:
    return next((i for i, tier in enumerate(PRICED_TIERS, start=1) if f" {tier}" in label), 0)


def effective_tiers(price: ModelPrice) -> Iterator[tuple[str, TokenRates]]:
    """Like ``labelled_tiers``, for every service tier as charged (the default factor's where the data has none)."""
    long_label = _tier_label(price.long_context_threshold)
    for tier in (STANDARD, *PRICED_TIERS):
        tier_rates = price.tier_rates(tier)
        tier_label = "" if tier == STANDARD else f" {tier}"
        yield tier_label, tier_rates.rates
        if tier_rates.long_context_rates is not None:
            yield tier_label + long_label, tier_rates.long_context_rates


@dataclass(frozen=True)
class FieldChange:
    name: str  # "mode", "max input tokens", "max output tokens", "web search per use (USD)"
    old: str  # "" when not set
    new: str


def field_changes(old: ModelPrice, new: ModelPrice) -> list[FieldChange]:
    """Changes of what is not a per-token rate: mode, context window, output limit, web search price."""
    pairs = [
        ("provider", old.provider, new.provider),
        ("mode", old.mode, new.mode),
        ("max input tokens", _text(old.max_input_tokens), _text(new.max_input_tokens)),
        ("max output tokens", _text(old.max_output_tokens), _text(new.max_output_tokens)),
        ("web search per use (USD)", _text(old.web_search_price), _text(new.web_search_price)),
    ]
    return [FieldChange(name, before, after) for name, before, after in pairs if before != after]


def _text(value: int | Decimal | None) -> str:
    if value is None:
        return ""
    return plain_decimal(value) if isinstance(value, Decimal) else str(value)


def _tier_label(threshold: int | None) -> str:
    return f" above {threshold // 1000}k" if threshold else ""


def _tier_changes(label: str, old: Mapping[str, Decimal], new: Mapping[str, Decimal]) -> list[RateChange]:
    return [
        RateChange(RATE_LABELS[name] + label, old.get(name), new.get(name))
        for name in RATE_LABELS
        if old.get(name) != new.get(name)
    ]
