"""Per-token prices, the exact USD cost of a call, and the most a call can cost (its reservation).

Modules, each importing only those above it: ``service_tiers``, ``rates`` (``TokenRates``, LiteLLM fields),
``model_price`` (``ModelPrice``), ``table`` (``PriceTable``), ``cost`` (``cost_of``, ``worst_case_cost``),
``provider_usage`` (``usage_from_*``).

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

from costbrake.pricing.cost import TTL_1H, TTL_5M, cost_of, worst_case_cost
from costbrake.pricing.model_price import CHAT, EMBEDDING, MODES, RESPONSES, ModelPrice
from costbrake.pricing.provider_usage import (
    usage_from_anthropic,
    usage_from_openai,
    usage_from_openai_embeddings,
    usage_from_openai_responses,
)
from costbrake.pricing.rates import PriceDataError, TokenRates
from costbrake.pricing.service_tiers import PRICED_TIERS, STANDARD, billed_tier, requested_tiers
from costbrake.pricing.table import PriceTable, downgrade_target

__all__ = [
    "CHAT",
    "EMBEDDING",
    "MODES",
    "PRICED_TIERS",
    "RESPONSES",
    "STANDARD",
    "TTL_1H",
    "TTL_5M",
    "ModelPrice",
    "PriceDataError",
    "PriceTable",
    "TokenRates",
    "billed_tier",
    "cost_of",
    "downgrade_target",
    "requested_tiers",
    "usage_from_anthropic",
    "usage_from_openai",
    "usage_from_openai_embeddings",
    "usage_from_openai_responses",
    "worst_case_cost",
]
