"""``ModelPrice``: one model's rates (context tiers, service tiers, web search), read from and written to its
LiteLLM-style entry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from costbrake.pricing.rates import (
    MAX_INPUT_FIELD,
    MAX_OUTPUT_FIELD,
    OUTPUT_FIELDS,
    RATE_FIELDS,
    RATE_KEY,
    WEB_SEARCH_FIELD,
    WEB_SEARCH_SIZE_FIELDS,
    PriceDataError,
    ServiceTierRates,
    TokenRates,
    filled_tier_rates,
    parse_web_search_price,
    price_decimal,
    rates_from_fields,
    scaled_rates,
    tier_factor,
    token_limit,
)
from costbrake.pricing.service_tiers import (
    PRICED_TIERS,
    STANDARD,
    TIER_OF_SUFFIX,
    TIER_SUFFIX,
    default_factor,
)

# Modes the gateway serves (LiteLLM's ``mode``): chat completions / messages, the Responses API, embeddings.
CHAT = "chat"
RESPONSES = "responses"
EMBEDDING = "embedding"
MODES = (CHAT, RESPONSES, EMBEDDING)

# Server-side web search, USD per use, for a model whose data has no price: Anthropic publishes $10 per
# 1,000 searches for every model; OpenAI's dearest published web-search call is $25 per 1,000.
DEFAULT_WEB_SEARCH_PER_USE: Mapping[str, Decimal] = {
    "anthropic": Decimal("0.01"),
    "openai": Decimal("0.025"),
}
_OTHER_PROVIDER_WEB_SEARCH = Decimal("0.025")


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
        for name, limit in ((MAX_INPUT_FIELD, self.max_input_tokens), (MAX_OUTPUT_FIELD, self.max_output_tokens)):
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
            factor = default_factor(self.provider, tier)
            return ServiceTierRates(
                scaled_rates(self.rates, factor),
                None if self.long_context_rates is None else scaled_rates(self.long_context_rates, factor),
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
            parsed = RATE_KEY.match(key)
            if parsed is None or parsed.group("field") not in RATE_FIELDS or value is None:
                continue  # LiteLLM's other keys (capabilities, audio/image prices, other tiers …) do not apply
            rate_field = parsed.group("field")
            free_allowed = mode == EMBEDDING and rate_field in OUTPUT_FIELDS
            rate = price_decimal(value, f"{model}.{key}", allow_zero=free_allowed)
            tier = TIER_OF_SUFFIX[parsed.group("tier")] if parsed.group("tier") else STANDARD
            above = int(parsed.group("thousands")) * 1000 if parsed.group("thousands") else 0
            found.setdefault((tier, above), {})[rate_field] = rate
        thresholds = sorted({above for _, above in found if above})
        if len(thresholds) > 1:
            raise PriceDataError(f"{model}: more than one long-context threshold {thresholds}")
        threshold = thresholds[0] if thresholds else None
        standard = rates_from_fields(model, provider, found.get((STANDARD, 0), {}))
        long_context = None
        if threshold is not None:
            if (STANDARD, threshold) not in found:
                raise PriceDataError(f"{model}: a service tier has a long-context price but the standard tier has none")
            long_context = rates_from_fields(
                f"{model} (above {threshold} input tokens)", provider, found[(STANDARD, threshold)], base=standard
            )
        tiers: list[tuple[str, ServiceTierRates]] = []
        for tier in PRICED_TIERS:
            base_fields = found.get((tier, 0), {})
            long_fields = found.get((tier, threshold), {}) if threshold is not None else {}
            if not base_fields and not long_fields:
                continue
            factor = tier_factor(provider, tier, [(base_fields, standard), (long_fields, long_context)])
            tiers.append(
                (
                    tier,
                    ServiceTierRates(
                        filled_tier_rates(base_fields, standard, factor),
                        None if long_context is None else filled_tier_rates(long_fields, long_context, factor),
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
            max_input_tokens=token_limit(spec.get(MAX_INPUT_FIELD), f"{model}.{MAX_INPUT_FIELD}"),
            max_output_tokens=token_limit(spec.get(MAX_OUTPUT_FIELD), f"{model}.{MAX_OUTPUT_FIELD}"),
            service_tiers=tuple(tiers),
            web_search_per_use=parse_web_search_price(spec.get(WEB_SEARCH_FIELD), f"{model}.{WEB_SEARCH_FIELD}"),
        )

    def to_spec(self) -> dict[str, Any]:
        """The LiteLLM-style entry ``from_spec`` reads back: every rate explicit, as strings; limits as ints."""
        spec: dict[str, Any] = {"litellm_provider": self.provider, "mode": self.mode}
        if self.max_input_tokens is not None:
            spec[MAX_INPUT_FIELD] = self.max_input_tokens
        if self.max_output_tokens is not None:
            spec[MAX_OUTPUT_FIELD] = self.max_output_tokens
        threshold = self.long_context_threshold
        long_suffix = "" if threshold is None else f"_above_{threshold // 1000}k_tokens"
        tiers: list[tuple[str, ServiceTierRates]] = [(STANDARD, self.tier_rates(STANDARD)), *self.service_tiers]
        for tier, tier_rates in tiers:
            tier_suffix = TIER_SUFFIX.get(tier, "")
            spec.update((name + tier_suffix, str(rate)) for name, rate in tier_rates.rates._items())
            long_context = tier_rates.long_context_rates
            if long_context is not None:
                spec.update((name + long_suffix + tier_suffix, str(rate)) for name, rate in long_context._items())
        if self.web_search_per_use is not None:
            spec[WEB_SEARCH_FIELD] = {size: str(self.web_search_per_use) for size in WEB_SEARCH_SIZE_FIELDS}
        return spec
