"""Per-token rates (``TokenRates``, ``ServiceTierRates``) and how they are read from LiteLLM-style fields: the
field names, exact decimal arithmetic, the rates a service tier's data leaves out."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any

from costbrake.pricing.service_tiers import default_factor

# Token counts and published prices have few digits, so every product and sum is exact at this precision;
# trapping Inexact turns any rounding into an error instead of a silently wrong charge.
EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
# A tier's ratio to the standard rate, rounded up (only ever used to raise a rate the data leaves out).
_RATIO = Context(prec=8, rounding=ROUND_CEILING, traps=[InvalidOperation, DivisionByZero, Overflow])

_INPUT = "input_cost_per_token"
_OUTPUT = "output_cost_per_token"
_CACHE_READ = "cache_read_input_token_cost"
_CACHE_WRITE_5M = "cache_creation_input_token_cost"
_CACHE_WRITE_1H = "cache_creation_input_token_cost_above_1hr"
_REASONING = "output_cost_per_reasoning_token"
RATE_FIELDS = (_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE_5M, _CACHE_WRITE_1H, _REASONING)
OUTPUT_FIELDS = (_OUTPUT, _REASONING)
WEB_SEARCH_FIELD = "search_context_cost_per_query"
WEB_SEARCH_SIZE_FIELDS = ("search_context_size_low", "search_context_size_medium", "search_context_size_high")
MAX_INPUT_FIELD = "max_input_tokens"
MAX_OUTPUT_FIELD = "max_output_tokens"
# <rate>[_above_<N>k_tokens][_<service tier>], e.g. input_cost_per_token_above_272k_tokens_priority.
RATE_KEY = re.compile(r"^(?P<field>.+?)(?:_above_(?P<thousands>\d+)k_tokens)?(?:_(?P<tier>priority|flex|batches))?$")

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
    """USD per token for each way a token is billed, within one context tier and service tier.

    Every rate is positive, except ``output``/``reasoning`` of an embedding model (``ModelPrice`` checks).
    """

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    reasoning: Decimal  # equals ``output`` for every model that bills reasoning as output

    def __post_init__(self) -> None:
        for name, rate in self._items():
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate < 0:
                raise PriceDataError(f"{name} must be a non-negative Decimal, got {rate!r}")
            if rate == 0 and name not in OUTPUT_FIELDS:
                raise PriceDataError(f"{name} must be positive, got {rate!r}")

    def _items(self) -> Iterator[tuple[str, Decimal]]:
        yield _INPUT, self.input
        yield _OUTPUT, self.output
        yield _CACHE_READ, self.cache_read
        yield _CACHE_WRITE_5M, self.cache_write_5m
        yield _CACHE_WRITE_1H, self.cache_write_1h
        yield _REASONING, self.reasoning

    @property
    def billed_output(self) -> Decimal:
        """The output rate as charged: an embedding model's output (never reported) costs as input."""
        return self.output if self.output > 0 else self.input

    @property
    def billed_reasoning(self) -> Decimal:
        return self.reasoning if self.reasoning > 0 else self.input

    def elementwise_max(self, other: TokenRates) -> TokenRates:
        return TokenRates(
            input=max(self.input, other.input),
            output=max(self.output, other.output),
            cache_read=max(self.cache_read, other.cache_read),
            cache_write_5m=max(self.cache_write_5m, other.cache_write_5m),
            cache_write_1h=max(self.cache_write_1h, other.cache_write_1h),
            reasoning=max(self.reasoning, other.reasoning),
        )


@dataclass(frozen=True)
class ServiceTierRates:
    """A service tier's rates: ``rates`` up to the model's long-context threshold, ``long_context_rates`` above."""

    rates: TokenRates
    long_context_rates: TokenRates | None = None


def tier_factor(provider: str, tier: str, present: list[tuple[dict[str, Decimal], TokenRates | None]]) -> Decimal:
    """The factor for the rates of ``tier`` the data leaves out: the default, or the largest ratio it shows."""
    factor = default_factor(provider, tier)
    for fields, standard in present:
        if standard is None:
            continue
        reference = dict(standard._items())
        for name, rate in fields.items():
            if reference[name] > 0:
                with localcontext(_RATIO):
                    factor = max(factor, rate / reference[name])
    return factor


def filled_tier_rates(fields: Mapping[str, Decimal], standard: TokenRates, factor: Decimal) -> TokenRates:
    """A service tier's rates: the data's, and for each rate it leaves out the lower of two upper estimates —
    the standard rate times ``factor``, and the tier's own input (output) rate times the standard tier's
    ratio to input (output): Anthropic's cache multiples, OpenAI's cache writes billed as input."""
    reference = dict(standard._items())
    full: dict[str, Decimal] = {}
    with localcontext(EXACT):
        for anchor in (_INPUT, _OUTPUT):
            full[anchor] = fields[anchor] if anchor in fields else reference[anchor] * factor
        for name, anchor in (
            (_CACHE_READ, _INPUT),
            (_CACHE_WRITE_5M, _INPUT),
            (_CACHE_WRITE_1H, _INPUT),
            (_REASONING, _OUTPUT),
        ):
            if name in fields:
                full[name] = fields[name]
                continue
            scaled = reference[name] * factor
            if reference[anchor] > 0:
                with localcontext(_RATIO):
                    ratio = reference[name] / reference[anchor]
                scaled = min(scaled, full[anchor] * ratio)
            full[name] = scaled.normalize()
    return _token_rates(full)


def scaled_rates(rates: TokenRates, factor: Decimal) -> TokenRates:
    if factor == 1:
        return rates
    with localcontext(EXACT):
        return _token_rates({name: (rate * factor).normalize() for name, rate in rates._items()})


def _token_rates(fields: Mapping[str, Decimal]) -> TokenRates:
    return TokenRates(
        input=fields[_INPUT],
        output=fields[_OUTPUT],
        cache_read=fields[_CACHE_READ],
        cache_write_5m=fields[_CACHE_WRITE_5M],
        cache_write_1h=fields[_CACHE_WRITE_1H],
        reasoning=fields[_REASONING],
    )


def price_decimal(value: Any, where: str, *, allow_zero: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PriceDataError(f"{where}: price must be a number or numeric string, got {value!r}")
    try:
        # repr() of a float is its shortest round-trip form: 3e-06 becomes exactly Decimal("0.000003").
        rate = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:
        raise PriceDataError(f"{where}: not a number: {value!r}") from exc
    if not rate.is_finite() or rate < 0 or (rate == 0 and not allow_zero):
        raise PriceDataError(f"{where}: price must be positive, got {value!r}")
    return rate


def token_limit(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise PriceDataError(f"{where}: must be a positive integer, got {value!r}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:
        raise PriceDataError(f"{where}: must be a positive integer, got {value!r}") from exc
    if not number.is_finite() or number <= 0 or number != number.to_integral_value():
        raise PriceDataError(f"{where}: must be a positive integer, got {value!r}")
    return int(number)


def parse_web_search_price(value: Any, where: str) -> Decimal | None:
    """LiteLLM's ``search_context_cost_per_query`` (USD per search by context size): its dearest size."""
    if value is None:
        return None
    values = list(value.values()) if isinstance(value, Mapping) else [value]
    prices = [price_decimal(v, where) for v in values if v is not None]
    return max(prices) if prices else None


def rates_from_fields(
    where: str, provider: str, fields: Mapping[str, Decimal], *, base: TokenRates | None = None
) -> TokenRates:
    if _INPUT not in fields or _OUTPUT not in fields:
        raise PriceDataError(f"{where}: needs both {_INPUT} and {_OUTPUT}")
    input_rate = fields[_INPUT]

    def cache_rate(name: str) -> Decimal:
        if name in fields:
            return fields[name]
        if provider == "anthropic":
            with localcontext(EXACT):
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
