"""Per-token prices, the exact USD cost of a call, and the most a call can cost (its reservation).

The packaged table (``data/prices.json``, generated from LiteLLM's community price map by
``costbrake.pricing_generate``) uses the field names of LiteLLM's ``model_prices_and_context_window.json``
(``input_cost_per_token``, ``cache_read_input_token_cost``, ``*_above_200k_tokens``, ``*_priority``,
``*_flex``, ``*_batches``, ``search_context_cost_per_query`` …) with USD-per-token values written as
strings, so ``Decimal`` stays exact; ``PriceTable.from_dict`` also accepts LiteLLM's float values. A model
without a positive input and output price is rejected when a table loads (an embedding model alone may
have an output price of 0: it bills no output, and output it reports anyway is charged as input), and an
unpriced model raises ``UnknownModel``: a call is never recorded as free.

Billed dimensions, each priced by ``cost_of`` and bounded by ``worst_case_cost``:

- tokens by kind: uncached input, cache read, cache write (5-minute and 1-hour TTL), output, reasoning;
- the long-context tier, chosen by the call's total input (cache reads and writes included);
- the service tier the response reports (``priority``, ``flex``, ``batch``): the data's rates where the
  map has them; a rate the map leaves out is the standard rate times the tier's factor, which is the larger
  of ``DEFAULT_TIER_FACTORS`` (OpenAI priority 2, every discount 1 — no discount we cannot see in the data)
  and the largest ratio the data shows for that tier of that model;
- server-side web searches, per use (the data's ``search_context_cost_per_query``, its dearest context
  size; ``DEFAULT_WEB_SEARCH_PER_USE`` when the map has none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
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
from functools import cache
from pathlib import Path
from typing import Any

from costbrake.errors import UnknownModel
from costbrake.usage import Usage

# Token counts and published prices have few digits, so every product and sum is exact at this precision;
# trapping Inexact turns any rounding into an error instead of a silently wrong charge.
_EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
# A tier's ratio to the standard rate, rounded up (only ever used to raise a rate the data leaves out).
_RATIO = Context(prec=8, rounding=ROUND_CEILING, traps=[InvalidOperation, DivisionByZero, Overflow])

_INPUT = "input_cost_per_token"
_OUTPUT = "output_cost_per_token"
_CACHE_READ = "cache_read_input_token_cost"
_CACHE_WRITE_5M = "cache_creation_input_token_cost"
_CACHE_WRITE_1H = "cache_creation_input_token_cost_above_1hr"
_REASONING = "output_cost_per_reasoning_token"
_RATE_FIELDS = (_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE_5M, _CACHE_WRITE_1H, _REASONING)
_OUTPUT_FIELDS = (_OUTPUT, _REASONING)
_WEB_SEARCH = "search_context_cost_per_query"
_WEB_SEARCH_SIZES = ("search_context_size_low", "search_context_size_medium", "search_context_size_high")
_MAX_INPUT = "max_input_tokens"
_MAX_OUTPUT = "max_output_tokens"
# <rate>[_above_<N>k_tokens][_<service tier>], e.g. input_cost_per_token_above_272k_tokens_priority.
_RATE_KEY = re.compile(r"^(?P<field>.+?)(?:_above_(?P<thousands>\d+)k_tokens)?(?:_(?P<tier>priority|flex|batches))?$")
_DATED_SNAPSHOT = re.compile(r"^(?P<base>.+)-(?:\d{4}-\d{2}-\d{2}|\d{8})$")

# Modes the gateway serves (LiteLLM's ``mode``): chat completions / messages, the Responses API, embeddings.
CHAT = "chat"
RESPONSES = "responses"
EMBEDDING = "embedding"
MODES = (CHAT, RESPONSES, EMBEDDING)

# Service tiers, provider-neutral.
STANDARD = "standard"
PRIORITY = "priority"
FLEX = "flex"
BATCH = "batch"
PRICED_TIERS = (PRIORITY, FLEX, BATCH)  # the tiers with rates of their own (STANDARD is ``ModelPrice.rates``)
_TIER_SUFFIX = {PRIORITY: "_priority", FLEX: "_flex", BATCH: "_batches"}
_TIER_OF_SUFFIX = {"priority": PRIORITY, "flex": FLEX, "batches": BATCH}

# The factor on a standard rate for a tier (or a rate of a tier) the data does not price. Never a discount
# we cannot see; OpenAI's priority processing is published as about 2x. Anthropic's Priority Tier is a
# capacity commitment drawn down at list-price ratios, so its tokens are recorded at the standard rates.
DEFAULT_TIER_FACTORS: Mapping[str, Mapping[str, Decimal]] = {
    "openai": {PRIORITY: Decimal(2), FLEX: Decimal(1), BATCH: Decimal(1)},
    "anthropic": {PRIORITY: Decimal(1), FLEX: Decimal(1), BATCH: Decimal(1)},
}
_OTHER_PROVIDER_TIER_FACTORS = {PRIORITY: Decimal(2), FLEX: Decimal(1), BATCH: Decimal(1)}

# What a request's ``service_tier`` lets the provider bill. OpenAI: absent or "auto" is the project's
# configured tier, which may be priority; "priority" may fall back to standard. Anthropic: absent or "auto"
# uses Priority Tier capacity when the organisation has it. Provider-neutral names are accepted as well.
_REQUESTABLE_TIERS: Mapping[str, Mapping[str | None, tuple[str, ...]]] = {
    "openai": {
        None: (STANDARD, PRIORITY),
        "auto": (STANDARD, PRIORITY),
        "default": (STANDARD,),
        "scale": (STANDARD,),
        "flex": (FLEX,),
        "priority": (PRIORITY, STANDARD),
    },
    "anthropic": {
        None: (STANDARD, PRIORITY),
        "auto": (STANDARD, PRIORITY),
        "standard_only": (STANDARD,),
    },
}
_NEUTRAL_REQUESTS = {STANDARD: (STANDARD,), PRIORITY: (PRIORITY, STANDARD), FLEX: (FLEX,), BATCH: (BATCH,)}
# What a response's tier means: OpenAI says "default" (or, from some endpoints, "auto") for standard, and
# "scale" for prepaid Scale Tier units, recorded at standard list prices.
_REPORTED_TIERS = {
    "default": STANDARD,
    "auto": STANDARD,
    "standard": STANDARD,
    "scale": STANDARD,
    "priority": PRIORITY,
    "flex": FLEX,
    "batch": BATCH,
}

# Cache-write TTLs a request can ask for; any other value (or one the gateway cannot read) is priced as 1h.
TTL_5M = "5m"
TTL_1H = "1h"

# Server-side web search, USD per use, for a model whose data has no price: Anthropic publishes $10 per
# 1,000 searches for every model; OpenAI's dearest published web-search call is $25 per 1,000.
DEFAULT_WEB_SEARCH_PER_USE: Mapping[str, Decimal] = {
    "anthropic": Decimal("0.01"),
    "openai": Decimal("0.025"),
}
_OTHER_PROVIDER_WEB_SEARCH = Decimal("0.025")

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
            if rate == 0 and name not in _OUTPUT_FIELDS:
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


@dataclass(frozen=True)
class ModelPrice:
    """A model's rates; ``long_context_rates`` apply when a call's total input exceeds the threshold.

    ``service_tiers`` holds the tiers the data prices, as ``(tier, rates)`` pairs in ``PRICED_TIERS`` order; a tier it
    does not hold is priced by ``DEFAULT_TIER_FACTORS`` (see ``tier_rates``). ``max_input_tokens`` is the
    context window the provider enforces (None: unknown), ``max_output_tokens`` the most one call may write.
    """

    model: str
    provider: str
    rates: TokenRates
    long_context_threshold: int | None = None
    long_context_rates: TokenRates | None = None
    mode: str = CHAT
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    service_tiers: tuple[tuple[str, ServiceTierRates], ...] = field(default=())
    web_search_per_use: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.model or not self.provider:
            raise PriceDataError(f"model {self.model!r} needs a name and a provider")
        if self.mode not in MODES:
            raise PriceDataError(f"{self.model}: mode {self.mode!r} is not one of {', '.join(MODES)}")
        if (self.long_context_threshold is None) != (self.long_context_rates is None):
            raise PriceDataError(f"{self.model}: a long-context tier needs both a threshold and rates")
        if self.long_context_threshold is not None and self.long_context_threshold <= 0:
            raise PriceDataError(f"{self.model}: long-context threshold must be positive")
        for name, limit in ((_MAX_INPUT, self.max_input_tokens), (_MAX_OUTPUT, self.max_output_tokens)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
                raise PriceDataError(f"{self.model}: {name} must be a positive integer, got {limit!r}")
        if self.web_search_per_use is not None and (
            not isinstance(self.web_search_per_use, Decimal)
            or not self.web_search_per_use.is_finite()
            or self.web_search_per_use <= 0
        ):
            raise PriceDataError(f"{self.model}: web search price must be positive, got {self.web_search_per_use!r}")
        tiers = [tier for tier, _ in self.service_tiers]
        if tiers != [tier for tier in PRICED_TIERS if tier in tiers]:
            raise PriceDataError(f"{self.model}: service tiers must be distinct, of {PRICED_TIERS} in order: {tiers}")
        for tier, tier_rates in self.service_tiers:
            if (tier_rates.long_context_rates is None) != (self.long_context_rates is None):
                raise PriceDataError(f"{self.model}: the {tier} tier must have a long-context tier iff the model does")
        for where, rates in self._all_rates():
            if self.mode != EMBEDDING and (rates.output <= 0 or rates.reasoning <= 0):
                raise PriceDataError(f"{self.model} ({where}): output price must be positive")

    def _all_rates(self) -> Iterator[tuple[str, TokenRates]]:
        yield STANDARD, self.rates
        if self.long_context_rates is not None:
            yield f"{STANDARD} long context", self.long_context_rates
        for tier, tier_rates in self.service_tiers:
            yield tier, tier_rates.rates
            if tier_rates.long_context_rates is not None:
                yield f"{tier} long context", tier_rates.long_context_rates

    @property
    def is_embedding(self) -> bool:
        return self.mode == EMBEDDING

    @property
    def web_search_price(self) -> Decimal:
        """USD per server-side web search: the data's, else the provider's published default."""
        if self.web_search_per_use is not None:
            return self.web_search_per_use
        return DEFAULT_WEB_SEARCH_PER_USE.get(self.provider, _OTHER_PROVIDER_WEB_SEARCH)

    def tier_rates(self, tier: str = STANDARD) -> ServiceTierRates:
        """The rates of a service tier (``STANDARD``, ``PRIORITY``, ``FLEX``, ``BATCH``).

        A tier the data does not price is the standard rates times ``DEFAULT_TIER_FACTORS``; a tier nobody
        knows (a word a response may one day report) is the dearest of every tier, rate by rate.
        """
        if tier == STANDARD:
            return ServiceTierRates(self.rates, self.long_context_rates)
        stored = dict(self.service_tiers)
        if tier in stored:
            return stored[tier]
        if tier in PRICED_TIERS:
            factor = _default_factor(self.provider, tier)
            return ServiceTierRates(
                _scaled(self.rates, factor),
                None if self.long_context_rates is None else _scaled(self.long_context_rates, factor),
            )
        dearest = self.tier_rates(STANDARD)
        for known in PRICED_TIERS:
            candidate = self.tier_rates(known)
            dearest = ServiceTierRates(
                dearest.rates.elementwise_max(candidate.rates),
                None
                if dearest.long_context_rates is None or candidate.long_context_rates is None
                else dearest.long_context_rates.elementwise_max(candidate.long_context_rates),
            )
        return dearest

    def rates_for(self, total_input_tokens: int, tier: str = STANDARD) -> TokenRates:
        """The rates a call of this many input tokens (cache included) is billed at, in ``tier``."""
        tier_rates = self.tier_rates(tier)
        threshold = self.long_context_threshold
        if tier_rates.long_context_rates is not None and threshold is not None and total_input_tokens > threshold:
            return tier_rates.long_context_rates
        return tier_rates.rates

    @classmethod
    def from_spec(cls, model: str, spec: Mapping[str, Any]) -> ModelPrice:
        """Build from one LiteLLM-style entry (values as strings, ints or floats, USD per token)."""
        provider = spec.get("litellm_provider") or spec.get("provider")
        if not isinstance(provider, str) or not provider:
            raise PriceDataError(f"{model}: missing provider (litellm_provider)")
        mode = spec.get("mode") or CHAT
        if mode not in MODES:
            raise PriceDataError(f"{model}: mode {mode!r} is not one of {', '.join(MODES)}")
        # (service tier, threshold or 0) -> {rate field: USD per token}
        found: dict[tuple[str, int], dict[str, Decimal]] = {}
        for key, value in spec.items():
            parsed = _RATE_KEY.match(key)
            if parsed is None or parsed.group("field") not in _RATE_FIELDS or value is None:
                continue  # LiteLLM's other keys (capabilities, audio/image prices, other tiers …) do not apply
            rate_field = parsed.group("field")
            free_allowed = mode == EMBEDDING and rate_field in _OUTPUT_FIELDS
            rate = _price_decimal(value, f"{model}.{key}", allow_zero=free_allowed)
            tier = _TIER_OF_SUFFIX[parsed.group("tier")] if parsed.group("tier") else STANDARD
            above = int(parsed.group("thousands")) * 1000 if parsed.group("thousands") else 0
            found.setdefault((tier, above), {})[rate_field] = rate
        thresholds = sorted({above for _, above in found if above})
        if len(thresholds) > 1:
            raise PriceDataError(f"{model}: more than one long-context threshold {thresholds}")
        threshold = thresholds[0] if thresholds else None
        standard = _rates(model, provider, found.get((STANDARD, 0), {}))
        long_context = None
        if threshold is not None:
            if (STANDARD, threshold) not in found:
                raise PriceDataError(f"{model}: a service tier has a long-context price but the standard tier has none")
            long_context = _rates(
                f"{model} (above {threshold} input tokens)", provider, found[(STANDARD, threshold)], base=standard
            )
        tiers: list[tuple[str, ServiceTierRates]] = []
        for tier in PRICED_TIERS:
            base_fields = found.get((tier, 0), {})
            long_fields = found.get((tier, threshold), {}) if threshold is not None else {}
            if not base_fields and not long_fields:
                continue
            factor = _tier_factor(provider, tier, [(base_fields, standard), (long_fields, long_context)])
            tiers.append(
                (
                    tier,
                    ServiceTierRates(
                        _filled(base_fields, standard, factor),
                        None if long_context is None else _filled(long_fields, long_context, factor),
                    ),
                )
            )
        return cls(
            model=model,
            provider=provider,
            rates=standard,
            long_context_threshold=threshold,
            long_context_rates=long_context,
            mode=mode,
            max_input_tokens=_token_limit(spec.get(_MAX_INPUT), f"{model}.{_MAX_INPUT}"),
            max_output_tokens=_token_limit(spec.get(_MAX_OUTPUT), f"{model}.{_MAX_OUTPUT}"),
            service_tiers=tuple(tiers),
            web_search_per_use=_web_search_price(spec.get(_WEB_SEARCH), f"{model}.{_WEB_SEARCH}"),
        )

    def to_spec(self) -> dict[str, Any]:
        """The LiteLLM-style entry ``from_spec`` reads back: every rate explicit, as strings; limits as ints."""
        spec: dict[str, Any] = {"litellm_provider": self.provider, "mode": self.mode}
        if self.max_input_tokens is not None:
            spec[_MAX_INPUT] = self.max_input_tokens
        if self.max_output_tokens is not None:
            spec[_MAX_OUTPUT] = self.max_output_tokens
        threshold = self.long_context_threshold
        long_suffix = "" if threshold is None else f"_above_{threshold // 1000}k_tokens"
        tiers: list[tuple[str, ServiceTierRates]] = [(STANDARD, self.tier_rates(STANDARD)), *self.service_tiers]
        for tier, tier_rates in tiers:
            tier_suffix = _TIER_SUFFIX.get(tier, "")
            spec.update((name + tier_suffix, str(rate)) for name, rate in tier_rates.rates._items())
            long_context = tier_rates.long_context_rates
            if long_context is not None:
                spec.update((name + long_suffix + tier_suffix, str(rate)) for name, rate in long_context._items())
        if self.web_search_per_use is not None:
            spec[_WEB_SEARCH] = {size: str(self.web_search_per_use) for size in _WEB_SEARCH_SIZES}
        return spec


def _default_factor(provider: str, tier: str) -> Decimal:
    return DEFAULT_TIER_FACTORS.get(provider, _OTHER_PROVIDER_TIER_FACTORS)[tier]


def _tier_factor(provider: str, tier: str, present: list[tuple[dict[str, Decimal], TokenRates | None]]) -> Decimal:
    """The factor for the rates of ``tier`` the data leaves out: the default, or the largest ratio it shows."""
    factor = _default_factor(provider, tier)
    for fields, standard in present:
        if standard is None:
            continue
        reference = dict(standard._items())
        for name, rate in fields.items():
            if reference[name] > 0:
                with localcontext(_RATIO):
                    factor = max(factor, rate / reference[name])
    return factor


def _filled(fields: Mapping[str, Decimal], standard: TokenRates, factor: Decimal) -> TokenRates:
    """A service tier's rates: the data's, and for each rate it leaves out the lower of two upper estimates —
    the standard rate times ``factor``, and the tier's own input (output) rate times the standard tier's
    ratio to input (output): Anthropic's cache multiples, OpenAI's cache writes billed as input."""
    reference = dict(standard._items())
    full: dict[str, Decimal] = {}
    with localcontext(_EXACT):
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


def _scaled(rates: TokenRates, factor: Decimal) -> TokenRates:
    if factor == 1:
        return rates
    with localcontext(_EXACT):
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


def _price_decimal(value: Any, where: str, *, allow_zero: bool = False) -> Decimal:
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


def _positive_decimal(value: Any, where: str) -> Decimal:
    return _price_decimal(value, where)


def _token_limit(value: Any, where: str) -> int | None:
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


def _web_search_price(value: Any, where: str) -> Decimal | None:
    """LiteLLM's ``search_context_cost_per_query`` (USD per search by context size): its dearest size."""
    if value is None:
        return None
    values = list(value.values()) if isinstance(value, Mapping) else [value]
    prices = [_price_decimal(v, where) for v in values if v is not None]
    return max(prices) if prices else None


def _rates(where: str, provider: str, fields: Mapping[str, Decimal], *, base: TokenRates | None = None) -> TokenRates:
    if _INPUT not in fields or _OUTPUT not in fields:
        raise PriceDataError(f"{where}: needs both {_INPUT} and {_OUTPUT}")
    input_rate = fields[_INPUT]

    def cache_rate(name: str) -> Decimal:
        if name in fields:
            return fields[name]
        if provider == "anthropic":
            with localcontext(_EXACT):
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


# ---- service tiers of requests and responses -------------------------------------------------------------


def requested_tiers(provider: str, requested: str | None) -> tuple[str, ...]:
    """Every tier a request's ``service_tier`` (as sent, None when absent) lets the provider bill.

    Raises ``ValueError`` for a value the provider does not document: the gateway refuses the request (400)
    rather than reserve for a tier it cannot price.
    """
    allowed = _REQUESTABLE_TIERS.get(provider, {None: (STANDARD, PRIORITY)})
    if requested in allowed:
        return allowed[requested]
    if requested in _NEUTRAL_REQUESTS:
        return _NEUTRAL_REQUESTS[requested]
    raise ValueError(f"service_tier {requested!r} is not one of {sorted(str(k) for k in allowed if k)}")


def billed_tier(reported: Any) -> str | None:
    """The provider-neutral tier a response reports (``Usage.service_tier``); None when it reports none.

    An unknown word is kept (lower-cased): ``cost_of`` prices it at the model's dearest tier.
    """
    if not isinstance(reported, str) or not reported.strip():
        return None
    word = reported.strip().lower()
    return _REPORTED_TIERS.get(word, word)


# ---- the table -------------------------------------------------------------------------------------------


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

    def to_dict(self) -> dict[str, dict[str, Any]]:
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

    def base_model(self, model: str) -> str:
        """The family name of ``model``: a dated snapshot's base when the table prices it, else ``model``.

        ``gpt-4o-2024-05-13`` → ``gpt-4o`` (although the snapshot has a price of its own).
        """
        dated = _DATED_SNAPSHOT.match(model)
        if dated and dated.group("base") in self:
            return dated.group("base")
        return model

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
        """A new table where each given price replaces (or adds) its model's entry.

        An override of a base model (``gpt-4o``) also replaces the entries of its dated snapshots
        (``gpt-4o-2024-08-06``) that are priced exactly as the base, unless they are overridden themselves:
        the snapshot of a model bills as the model does. A snapshot priced otherwise (``gpt-4o-2024-05-13``)
        keeps its own price.
        """
        overrides = {price.model: price for price in prices}
        merged = dict(self._prices)
        for name, price in self._prices.items():
            dated = _DATED_SNAPSHOT.match(name)
            if dated is None or name in overrides or dated.group("base") not in overrides:
                continue
            base = self._prices.get(dated.group("base"))
            if base is not None and replace(price, model=base.model) == base:
                merged[name] = replace(overrides[base.model], model=name)
        merged.update(overrides)
        return PriceTable(merged.values())


def downgrade_target(downgrade_map: Mapping[str, str], model: str) -> str | None:
    """The cheaper model ``downgrade_map`` names for ``model``, or None.

    A dated snapshot (``gpt-4o-2024-05-13``, ``claude-sonnet-4-5-20250929``) that the map does not name
    itself is downgraded as its base model is; so is an alias ending in ``-latest``.
    """
    if model in downgrade_map:
        return downgrade_map[model]
    dated = _DATED_SNAPSHOT.match(model)
    if dated and dated.group("base") in downgrade_map:
        return downgrade_map[dated.group("base")]
    latest = model.removesuffix("-latest")
    if latest != model and latest in downgrade_map:
        return downgrade_map[latest]
    return None


@cache
def _packaged_table() -> PriceTable:
    raw = (Path(__file__).parent / "data" / "prices.json").read_text(encoding="utf-8")
    return PriceTable.from_dict(json.loads(raw))


# ---- usage of provider responses -------------------------------------------------------------------------


def usage_from_openai(usage: Mapping[str, Any], *, service_tier: Any = None, web_search_requests: int = 0) -> Usage:
    """Usage of a chat.completions response: ``prompt_tokens`` includes ``cached_tokens`` and
    ``completion_tokens`` includes ``reasoning_tokens``; absent or null details count as 0.

    ``service_tier`` is the completion's top-level field (it is not inside ``usage``); ``web_search_requests``
    the searches the caller knows were made (a search model searches once per request).
    """
    prompt_tokens = _count(usage, "prompt_tokens", required=True)
    completion_tokens = _count(usage, "completion_tokens", required=True)
    cached_tokens = _count(_details(usage, "prompt_tokens_details"), "cached_tokens")
    reasoning_tokens = _count(_details(usage, "completion_tokens_details"), "reasoning_tokens")
    if cached_tokens > prompt_tokens:
        raise ValueError(f"cached_tokens ({cached_tokens}) exceed prompt_tokens ({prompt_tokens})")
    if reasoning_tokens > completion_tokens:
        raise ValueError(f"reasoning_tokens ({reasoning_tokens}) exceed completion_tokens ({completion_tokens})")
    if isinstance(web_search_requests, bool) or not isinstance(web_search_requests, int) or web_search_requests < 0:
        raise ValueError(f"web_search_requests must be a non-negative integer, got {web_search_requests!r}")
    return Usage(
        input_tokens=prompt_tokens - cached_tokens,
        output_tokens=completion_tokens,
        cache_read_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
        service_tier=billed_tier(service_tier),
        web_search_requests=web_search_requests,
    )


def usage_from_openai_responses(
    usage: Mapping[str, Any], *, service_tier: Any = None, web_search_requests: int = 0
) -> Usage:
    """Usage of a Responses API response: ``input_tokens`` includes ``input_tokens_details.cached_tokens``,
    ``output_tokens`` includes ``output_tokens_details.reasoning_tokens`` (as chat completions, renamed).
    ``web_search_requests`` is the number of ``web_search_call`` output items."""
    renamed = {
        "prompt_tokens": usage.get("input_tokens"),
        "completion_tokens": usage.get("output_tokens"),
        "prompt_tokens_details": usage.get("input_tokens_details"),
        "completion_tokens_details": usage.get("output_tokens_details"),
    }
    return usage_from_openai(renamed, service_tier=service_tier, web_search_requests=web_search_requests)


def usage_from_openai_embeddings(usage: Mapping[str, Any]) -> Usage:
    """Usage of an embeddings response: ``prompt_tokens`` only (billed at the input rate)."""
    return Usage(input_tokens=_count(usage, "prompt_tokens", required=True))


def usage_from_anthropic(usage: Mapping[str, Any]) -> Usage:
    """Usage of a Messages response: ``input_tokens`` already excludes cache reads and writes.

    Cache writes are split by ``cache_creation.ephemeral_{5m,1h}_input_tokens`` when present; writes the
    split does not account for are billed as 5-minute writes (the API's default TTL). Thinking tokens
    (``output_tokens_details.thinking_tokens``) are inside ``output_tokens``, billed as output. The tier is
    ``usage.service_tier``; web searches are ``usage.server_tool_use.web_search_requests``.
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
        service_tier=billed_tier(usage.get("service_tier")),
        web_search_requests=_count(_details(usage, "server_tool_use"), "web_search_requests"),
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


# ---- cost and worst case ---------------------------------------------------------------------------------


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
    with localcontext(_EXACT):
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
            with localcontext(_EXACT):
                worst = max(worst, input_tokens * input_rate + output_tokens * output_rate)
    with localcontext(_EXACT):
        return worst + web_search_uses * price.web_search_price


def _cached_input_rates(price: ModelPrice, rates: TokenRates, cache_write_ttl: str | None) -> list[Decimal]:
    allowed = [rates.cache_read]
    if cache_write_ttl is not None or price.provider == "openai":
        allowed.append(rates.cache_write_5m)
    if cache_write_ttl is not None and cache_write_ttl != TTL_5M:
        allowed.append(rates.cache_write_1h)
    return allowed
