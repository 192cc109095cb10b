"""The report's advice (pure): what to change when answers are cut off, caching does not pay, or a budget runs out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from costbrake.formatting import percent, usd
from costbrake.reports.figures import BudgetLine, FeatureCost, TokenStats
from costbrake.reports.reducers import CostReducers, cache_advice, unhelpful_caches

TRUNCATION_ADVICE_ABOVE = Decimal("0.05")  # more truncated answers than this: advise
CACHE_HELPFUL_FROM = Decimal("0.20")  # a lower hit rate means caching is not helping...
CACHE_MIN_CALLS = 100  # ...once there are this many completed calls to judge by


@dataclass(frozen=True)
class Advice:
    code: str  # "truncation" | "cache" | "response_cache" | "budget_runout"
    message: str


def advice_for(
    tokens: TokenStats, features: Sequence[FeatureCost], budgets: Sequence[BudgetLine]
) -> tuple[Advice, ...]:
    advice: list[Advice] = []
    if tokens.truncation_rate is not None and tokens.truncation_rate > TRUNCATION_ADVICE_ABOVE:
        worst = [
            f"{f.name} {percent(f.tokens.truncation_rate)}"
            for f in sorted(features, key=lambda f: -(f.tokens.truncation_rate or 0))
            if f.tokens.truncation_rate is not None and f.tokens.truncation_rate > TRUNCATION_ADVICE_ABOVE
        ]
        advice.append(
            Advice(
                "truncation",
                f"{percent(tokens.truncation_rate)} of answers were cut off at max_tokens "
                f"({tokens.truncations} of {tokens.completed_calls}; above {percent(TRUNCATION_ADVICE_ABOVE)}): "
                "raise max_tokens or ask for shorter answers - a cut-off answer is paid for and often retried"
                + (f" (features: {', '.join(worst)})" if worst else "")
                + ".",
            )
        )
    rate = tokens.cache_hit_rate
    caching = tokens.cache_hits + tokens.cache_writes > 0  # no advice about a cache nobody uses
    if caching and rate is not None and tokens.completed_calls >= CACHE_MIN_CALLS and rate < CACHE_HELPFUL_FROM:
        advice.append(
            Advice(
                "cache",
                f"Caching is not helping: {percent(rate)} cache hits over {tokens.completed_calls} calls "
                f"(below {percent(CACHE_HELPFUL_FROM)}) while {tokens.cache_writes} calls paid to write the cache; "
                "keep the cached prefix identical across calls or stop caching it.",
            )
        )
    advice += [Advice("budget_runout", _runout(line)) for line in budgets if line.exhausted_at is not None]
    return tuple(advice)


def reducer_advice(reducers: CostReducers) -> tuple[Advice, ...]:
    return tuple(Advice("response_cache", cache_advice(feature)) for feature in unhelpful_caches(reducers))


def _runout(line: BudgetLine) -> str:
    if line.spent_usd >= line.month_usd:
        return f"The {line.scope} budget of {usd(line.month_usd)} is spent ({usd(line.spent_usd)} this month)."
    return (
        f"At {usd(line.rate_usd_per_day)}/day the {line.scope} budget of {usd(line.month_usd)} runs out on "
        f"{line.exhausted_at:%Y-%m-%d %H:%M} UTC (projected month {usd(line.projected_usd)})."
    )
