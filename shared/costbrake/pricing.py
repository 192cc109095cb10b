"""Per-token prices and the exact USD cost of a call.

The packaged table (``data/prices.json``) uses the field names of LiteLLM's
``model_prices_and_context_window.json`` (``input_cost_per_token``, ``cache_read_input_token_cost``,
``*_above_200k_tokens`` …) with USD-per-token values written as strings, so ``Decimal`` stays exact;
``PriceTable.from_dict`` also accepts LiteLLM's float values. A model without a positive input and
output price is rejected when a table loads, and an unpriced model raises ``UnknownModel``: a call is
never recorded as free.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow, localcontext
from functools import cache
from pathlib import Path
from typing import Any

from costbrake.errors import UnknownModel
from costbrake.usage import Usage

# Token counts and published prices have few digits, so every product and sum is exact at this precision;
# trapping Inexact turns any rounding into an error instead of a silently wrong charge.
_EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])

_INPUT = "input_cost_per_token"
_OUTPUT = "output_cost_per_token"
_CACHE_READ = "cache_read_input_token_cost"
_CACHE_WRITE_5M = "cache_creation_input_token_cost"
_CACHE_WRITE_1H = "cache_creation_input_token_cost_above_1hr"
_REASONING = "output_cost_per_reasoning_token"
_RATE_FIELDS = (_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE_5M, _CACHE_WRITE_1H, _REASONING)
_TIER_KEY = re.compile(r"^(?P<field>.+)_above_(?P<thousands>\d+)k_tokens$")
_DATED_SNAPSHOT = re.compile(r"^(?P<base>.+)-(?:\d{4}-\d{2}-\d{2}|\d{8})$")

# Anthropic publishes cache prices as multiples of the (tier's) input price; other providers get no
# discount we cannot see in the data, so a missing cache rate falls back to the full input rate.
_ANTHROPIC_CACHE_MULTIPLIERS = {
    _CACHE_READ: Decimal("0.1"),
    _CACHE_WRITE_5M: Decimal("1.25"),
    _CACHE_WRITE_1H: Decimal("2"),
}


class PriceDataError(ValueError):
    """Price data that would let a call be charged at a wrong or zero price."""


@dataclass(frozen=True)
class TokenRates:
    """USD per token for each way a token is billed, within one context tier."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    reasoning: Decimal  # equals ``output`` for every model that bills reasoning as output

    def __post_init__(self) -> None:
        for name, rate in self._items():
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                raise PriceDataError(f"{name} must be a positive Decimal, got {rate!r}")

    def _items(self) -> Iterator[tuple[str, Decimal]]:
        yield _INPUT, self.input
        yield _OUTPUT, self.output
        yield _CACHE_READ, self.cache_read
        yield _CACHE_WRITE_5M, self.cache_write_5m
        yield _CACHE_WRITE_1H, self.cache_write_1h
        yield _REASONING, self.reasoning


@dataclass(frozen=True)
class ModelPrice:
    """A model's rates; ``long_context_rates`` apply when a call's total input exceeds the threshold."""

    model: str
    provider: str
    rates: TokenRates
    long_context_threshold: int | None = None
    long_context_rates: TokenRates | None = None

    def __post_init__(self) -> None:
        if not self.model or not self.provider:
            raise PriceDataError(f"model {self.model!r} needs a name and a provider")
        if (self.long_context_threshold is None) != (self.long_context_rates is None):
            raise PriceDataError(f"{self.model}: a long-context tier needs both a threshold and rates")
        if self.long_context_threshold is not None and self.long_context_threshold <= 0:
            raise PriceDataError(f"{self.model}: long-context threshold must be positive")

    def rates_for(self, total_input_tokens: int) -> TokenRates:
        threshold, tier = self.long_context_threshold, self.long_context_rates
        if tier is not None and threshold is not None and total_input_tokens > threshold:
            return tier
        return self.rates

    @classmethod
    def from_spec(cls, model: str, spec: Mapping[str, Any]) -> ModelPrice:
        """Build from one LiteLLM-style entry (values as strings, ints or floats, USD per token)."""
        provider = spec.get("litellm_provider") or spec.get("provider")
        if not isinstance(provider, str) or not provider:
            raise PriceDataError(f"{model}: missing provider (litellm_provider)")
        base: dict[str, Decimal] = {}
        tiers: dict[int, dict[str, Decimal]] = {}
        for key, value in spec.items():
            tier_key = _TIER_KEY.match(key)
            field = tier_key.group("field") if tier_key else key
            if field not in _RATE_FIELDS or value is None:
                continue  # LiteLLM's other keys (context sizes, batch/priority prices, …) do not apply
            rate = _positive_decimal(value, f"{model}.{key}")
            if tier_key:
                tiers.setdefault(int(tier_key.group("thousands")) * 1000, {})[field] = rate
            else:
                base[field] = rate
        if len(tiers) > 1:
            raise PriceDataError(f"{model}: more than one long-context threshold {sorted(tiers)}")
        rates = _rates(model, provider, base)
        if not tiers:
            return cls(model=model, provider=provider, rates=rates)
        threshold, tier = next(iter(tiers.items()))
        return cls(
            model=model,
            provider=provider,
            rates=rates,
            long_context_threshold=threshold,
            long_context_rates=_rates(f"{model} (above {threshold} input tokens)", provider, tier),
        )

    def to_spec(self) -> dict[str, str]:
        """The LiteLLM-style entry ``from_spec`` reads back (every rate explicit, as strings)."""
        spec = {"litellm_provider": self.provider}
        spec.update((name, str(rate)) for name, rate in self.rates._items())
        if self.long_context_rates is not None and self.long_context_threshold is not None:
            suffix = f"_above_{self.long_context_threshold // 1000}k_tokens"
            spec.update((name + suffix, str(rate)) for name, rate in self.long_context_rates._items())
        return spec


def _positive_decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PriceDataError(f"{where}: price must be a number or numeric string, got {value!r}")
    try:
        # repr() of a float is its shortest round-trip form: 3e-06 becomes exactly Decimal("0.000003").
        rate = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:
        raise PriceDataError(f"{where}: not a number: {value!r}") from exc
    if not rate.is_finite() or rate <= 0:
        raise PriceDataError(f"{where}: price must be positive, got {value!r}")
    return rate


def _rates(where: str, provider: str, fields: Mapping[str, Decimal]) -> TokenRates:
    if _INPUT not in fields or _OUTPUT not in fields:
        raise PriceDataError(f"{where}: needs both {_INPUT} and {_OUTPUT}")
    input_rate = fields[_INPUT]

    def cache_rate(name: str) -> Decimal:
        if name in fields:
            return fields[name]
        if provider == "anthropic":
            return input_rate * _ANTHROPIC_CACHE_MULTIPLIERS[name]
        return input_rate

    return TokenRates(
        input=input_rate,
        output=fields[_OUTPUT],
        cache_read=cache_rate(_CACHE_READ),
        cache_write_5m=cache_rate(_CACHE_WRITE_5M),
        cache_write_1h=cache_rate(_CACHE_WRITE_1H),
        reasoning=fields.get(_REASONING, fields[_OUTPUT]),
    )


class PriceTable:
    """Immutable model → price map."""

    def __init__(self, prices: Iterable[ModelPrice]) -> None:
        self._prices = {price.model: price for price in prices}

    @classmethod
    def default(cls) -> PriceTable:
        """The table shipped in the package, parsed once per process."""
        return _packaged_table()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceTable:
        """Build from ``{model: LiteLLM-style entry}``; any unusable entry rejects the whole table."""
        prices = []
        for model, spec in data.items():
            if not isinstance(spec, Mapping):
                raise PriceDataError(f"{model}: entry must be an object, got {type(spec).__name__}")
            prices.append(ModelPrice.from_spec(model, spec))
        return cls(prices)

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {price.model: price.to_spec() for price in self.models()}

    def get(self, model: str) -> ModelPrice:
        """The model's price; a dated snapshot (``gpt-4o-2024-08-06``) falls back to its base model
        unless the snapshot has its own entry (``gpt-4o-2024-05-13`` is priced differently)."""
        price = self._prices.get(model)
        if price is not None:
            return price
        dated = _DATED_SNAPSHOT.match(model)
        if dated:
            price = self._prices.get(dated.group("base"))
            if price is not None:
                return price
        raise UnknownModel(model)

    def __contains__(self, model: object) -> bool:
        if not isinstance(model, str):
            return False
        try:
            self.get(model)
        except UnknownModel:
            return False
        return True

    def models(self) -> list[ModelPrice]:
        return [self._prices[name] for name in sorted(self._prices)]

    def with_overrides(self, prices: Iterable[ModelPrice]) -> PriceTable:
        """A new table where each given price replaces (or adds) its model's entry."""
        merged = dict(self._prices)
        merged.update((price.model, price) for price in prices)
        return PriceTable(merged.values())


@cache
def _packaged_table() -> PriceTable:
    raw = (Path(__file__).parent / "data" / "prices.json").read_text(encoding="utf-8")
    return PriceTable.from_dict(json.loads(raw))


def usage_from_openai(usage: Mapping[str, Any]) -> Usage:
    """Usage of a chat.completions response: ``prompt_tokens`` includes ``cached_tokens`` and
    ``completion_tokens`` includes ``reasoning_tokens``; absent or null details count as 0."""
    prompt_tokens = _count(usage, "prompt_tokens", required=True)
    completion_tokens = _count(usage, "completion_tokens", required=True)
    cached_tokens = _count(_details(usage, "prompt_tokens_details"), "cached_tokens")
    reasoning_tokens = _count(_details(usage, "completion_tokens_details"), "reasoning_tokens")
    if cached_tokens > prompt_tokens:
        raise ValueError(f"cached_tokens ({cached_tokens}) exceed prompt_tokens ({prompt_tokens})")
    if reasoning_tokens > completion_tokens:
        raise ValueError(f"reasoning_tokens ({reasoning_tokens}) exceed completion_tokens ({completion_tokens})")
    return Usage(
        input_tokens=prompt_tokens - cached_tokens,
        output_tokens=completion_tokens,
        cache_read_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
    )


def usage_from_anthropic(usage: Mapping[str, Any]) -> Usage:
    """Usage of a Messages response: ``input_tokens`` already excludes cache reads and writes.

    Cache writes are split by ``cache_creation.ephemeral_{5m,1h}_input_tokens`` when present; writes the
    split does not account for are billed as 5-minute writes (the API's default TTL). Thinking tokens
    (``output_tokens_details.thinking_tokens``) are inside ``output_tokens``, billed as output.
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


def cost_of(price: ModelPrice, usage: Usage) -> Decimal:
    """Exact USD cost of a call; the tier is chosen by all input tokens, cached ones included."""
    counts = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_5m_tokens,
        usage.cache_write_1h_tokens,
        usage.reasoning_tokens,
    )
    if any(count < 0 for count in counts):
        raise ValueError(f"token counts must be non-negative: {usage}")
    rates = price.rates_for(usage.total_input_tokens)
    reasoning_tokens = min(usage.reasoning_tokens, usage.output_tokens)
    with localcontext(_EXACT):
        return (
            usage.input_tokens * rates.input
            + usage.cache_read_tokens * rates.cache_read
            + usage.cache_write_5m_tokens * rates.cache_write_5m
            + usage.cache_write_1h_tokens * rates.cache_write_1h
            + (usage.output_tokens - reasoning_tokens) * rates.output
            + reasoning_tokens * rates.reasoning
        )


def worst_case_cost(price: ModelPrice, input_tokens: int, max_output_tokens: int) -> Decimal:
    """The most a call can cost: all input uncached at its tier's rate, plus every allowed output token."""
    if input_tokens < 0 or max_output_tokens < 0:
        raise ValueError("token counts must be non-negative")
    rates = price.rates_for(input_tokens)
    with localcontext(_EXACT):
        return input_tokens * rates.input + max_output_tokens * max(rates.output, rates.reasoning)
