"""What a feature would cost before it ships: monthly cost = daily calls x cost of one call x 30.

The cost of one call is ``cost_of`` a call of that many input and output tokens: input x input price +
output x output price, at the long-context rates when the input is above the model's threshold.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow, localcontext

from costbrake.errors import UnknownModel
from costbrake.pricing import ModelPrice, PriceTable, TokenRates, cost_of
from costbrake.usage import Usage

DAYS_PER_MONTH = 30
DEFAULT_THRESHOLD_USD = Decimal(10_000)
# Products of integers and short prices stay exact at this precision; rounding would be an error.
_EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])


@dataclass(frozen=True)
class Workload:
    daily_calls: int
    input_tokens: int  # per call
    output_tokens: int  # per call

    def __post_init__(self) -> None:
        if min(self.daily_calls, self.input_tokens, self.output_tokens) < 0:
            raise ValueError("calls and token counts must be non-negative")


@dataclass(frozen=True)
class Estimate:
    price: ModelPrice
    rates: TokenRates  # the tier that applies to this many input tokens
    per_call_usd: Decimal
    daily_usd: Decimal
    monthly_usd: Decimal
    long_context: bool  # the input is above the model's long-context threshold: its tier's rates apply
    over_threshold: bool


def estimate(prices: Iterable[ModelPrice], workload: Workload, threshold_usd: Decimal) -> list[Estimate]:
    """One estimate per model, cheapest first."""
    found = [_estimate(price, workload, threshold_usd) for price in prices]
    return sorted(found, key=lambda e: (e.monthly_usd, e.price.model))


def _estimate(price: ModelPrice, workload: Workload, threshold_usd: Decimal) -> Estimate:
    per_call = cost_of(price, Usage(input_tokens=workload.input_tokens, output_tokens=workload.output_tokens))
    rates = price.rates_for(workload.input_tokens)
    with localcontext(_EXACT):
        daily = per_call * workload.daily_calls
        monthly = daily * DAYS_PER_MONTH
    return Estimate(
        price=price,
        rates=rates,
        per_call_usd=per_call,
        daily_usd=daily,
        monthly_usd=monthly,
        long_context=rates is not price.rates,
        over_threshold=monthly > threshold_usd,
    )


class UnknownModelNamed(UnknownModel):
    """An unpriced model, with the priced names closest to it (a typo is the usual cause)."""

    def __init__(self, model: str, close: list[str]) -> None:
        super().__init__(model)
        self.close = close
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        self.message = f"No price for model '{model}'.{hint}"
        self.args = (self.message,)


def price_of(table: PriceTable, model: str) -> ModelPrice:
    """The model's price, or ``UnknownModelNamed`` listing the closest priced names."""
    try:
        return table.get(model)
    except UnknownModel:
        names = [price.model for price in table.models()]
        raise UnknownModelNamed(model, difflib.get_close_matches(model, names, n=5, cutoff=0.5)) from None
