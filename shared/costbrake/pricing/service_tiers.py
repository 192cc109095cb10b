"""Service tiers: the provider-neutral names, what a request's ``service_tier`` lets the provider bill, what a
response's means, and the factor on the standard rates for a tier the data does not price."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# Service tiers, provider-neutral.
STANDARD = "standard"
PRIORITY = "priority"
FLEX = "flex"
BATCH = "batch"
PRICED_TIERS = (PRIORITY, FLEX, BATCH)  # the tiers with rates of their own (STANDARD is ``ModelPrice.rates``)
TIER_SUFFIX = {PRIORITY: "_priority", FLEX: "_flex", BATCH: "_batches"}
TIER_OF_SUFFIX = {"priority": PRIORITY, "flex": FLEX, "batches": BATCH}

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


def default_factor(provider: str, tier: str) -> Decimal:
    return DEFAULT_TIER_FACTORS.get(provider, _OTHER_PROVIDER_TIER_FACTORS)[tier]


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
