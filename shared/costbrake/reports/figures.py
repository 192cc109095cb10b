"""The report's figures (pure; money is Decimal): totals, token statistics, costs per feature, model and user,
budgets with their projections, and cost series.

- *completed* calls are those with status "ok" that the provider answered: token statistics, truncation and
  cache hit rates are taken over them (a failed call has no answer to measure, a response-cache hit used no
  tokens); cost per call is taken over every call (a failure can be billed).
- a *cache hit* is a call that read cached tokens, the aggregator's rule (``costbrake.pipeline.rollups``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costbrake.budget_view import ScopeBudget
from costbrake.projection import project, run_rate_per_day
from costbrake.records import CallRecord
from costbrake.reports.stats import by_cost, cost_of, group, mean_money, mean_tokens, money, percentile, ratio
from costbrake.scopes import Scope, ScopeKind
from costbrake.windows import Window, span


@dataclass(frozen=True)
class Totals:
    cost_usd: Decimal
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class TokenStats:
    """Efficiency of the completed calls of a group (all, one feature, one model)."""

    completed_calls: int
    mean_input_tokens: Decimal | None
    p95_input_tokens: int | None
    mean_output_tokens: Decimal | None
    p95_output_tokens: int | None
    output_input_ratio: Decimal | None  # all output tokens / all input tokens
    truncations: int
    truncation_rate: Decimal | None
    cache_hits: int
    cache_hit_rate: Decimal | None
    cache_writes: int  # calls that paid to write to the provider's prompt cache


@dataclass(frozen=True)
class FeatureCost:
    name: str
    calls: int
    errors: int
    cost_usd: Decimal
    share: Decimal | None  # of the period's cost
    mean_cost_usd: Decimal | None  # per call
    p95_cost_usd: Decimal | None  # per call
    tokens: TokenStats


@dataclass(frozen=True)
class ModelEfficiency:
    name: str
    calls: int
    cost_usd: Decimal
    mean_cost_usd: Decimal | None  # per call
    usd_per_1k_tokens: Decimal | None  # cost / (input + output tokens) x 1000
    tokens: TokenStats


@dataclass(frozen=True)
class UserCost:
    user_id: str
    cost_usd: Decimal
    calls: int
    share: Decimal | None  # of the period's cost


@dataclass(frozen=True)
class CostPerUser:
    active_users: int  # users with at least one call in the period
    mean_usd: Decimal | None
    median_usd: Decimal | None
    p95_usd: Decimal | None
    max_usd: Decimal | None


@dataclass(frozen=True)
class BudgetLine:
    """One monthly budget: month-to-date spend and where the period's run rate takes it by the end of the month."""

    scope: str  # "global" or "feature#<name>"
    month_usd: Decimal
    spent_usd: Decimal  # settled this month
    committed_usd: Decimal  # settled + open reservations
    utilization: Decimal | None  # spent / budget
    period_cost_usd: Decimal  # this scope's cost in the report's period, the base of its run rate
    rate_usd_per_day: Decimal
    projected_usd: Decimal  # spent + rate x time left in the UTC month
    projected_utilization: Decimal | None
    exhausted_at: datetime | None  # when the budget runs out at the run rate; None if it lasts the month


@dataclass(frozen=True)
class FeatureSeries:
    name: str
    costs: tuple[Decimal, ...]  # aligned with the series' bucket starts


@dataclass(frozen=True)
class CostSeries:
    """Cost per UTC hour or day over the period; the first and last buckets may be partly outside it."""

    granularity: str  # "hour" | "day"
    starts: tuple[datetime, ...]
    totals: tuple[Decimal, ...]
    by_feature: tuple[FeatureSeries, ...]  # most expensive feature first


def is_cache_hit(call: CallRecord) -> bool:
    return call.cache_read_tokens > 0


def token_stats(calls: Sequence[CallRecord]) -> TokenStats:
    completed = [c for c in calls if c.status == "ok" and not c.cache_hit]  # a response-cache hit used no tokens
    inputs = [c.input_tokens for c in completed]
    outputs = [c.output_tokens for c in completed]
    truncations = sum(1 for c in completed if c.truncated)
    cache_hits = sum(1 for c in completed if is_cache_hit(c))
    return TokenStats(
        completed_calls=len(completed),
        mean_input_tokens=mean_tokens(inputs),
        p95_input_tokens=percentile(inputs, 95),
        mean_output_tokens=mean_tokens(outputs),
        p95_output_tokens=percentile(outputs, 95),
        output_input_ratio=ratio(sum(outputs), sum(inputs)),
        truncations=truncations,
        truncation_rate=ratio(truncations, len(completed)),
        cache_hits=cache_hits,
        cache_hit_rate=ratio(cache_hits, len(completed)),
        cache_writes=sum(1 for c in completed if c.cache_write_tokens > 0),
    )


def feature_costs(by_feature: Mapping[str, Sequence[CallRecord]], total_cost: Decimal) -> tuple[FeatureCost, ...]:
    return tuple(
        FeatureCost(
            name=name,
            calls=len(members),
            errors=sum(1 for c in members if c.status != "ok"),
            cost_usd=cost,
            share=ratio(cost, total_cost),
            mean_cost_usd=mean_money(cost, len(members)),
            p95_cost_usd=percentile((c.cost_usd for c in members), 95),
            tokens=token_stats(members),
        )
        for name, members, cost in by_cost(by_feature)
    )


def model_efficiency(calls: Sequence[CallRecord]) -> tuple[ModelEfficiency, ...]:
    return tuple(
        ModelEfficiency(
            name=name,
            calls=len(members),
            cost_usd=cost,
            mean_cost_usd=mean_money(cost, len(members)),
            usd_per_1k_tokens=_per_1k(cost, sum(c.input_tokens + c.output_tokens for c in members)),
            tokens=token_stats(members),
        )
        for name, members, cost in by_cost(group(calls, lambda c: c.model))
    )


def _per_1k(cost: Decimal, tokens: int) -> Decimal | None:
    return money(cost * 1000 / tokens) if tokens else None


def top_user_costs(calls: Sequence[CallRecord], total_cost: Decimal, limit: int) -> tuple[UserCost, ...]:
    return tuple(
        UserCost(user_id=name, cost_usd=cost, calls=len(members), share=ratio(cost, total_cost))
        for name, members, cost in by_cost(group(calls, lambda c: c.user_id))[:limit]
    )


def cost_per_user(calls: Sequence[CallRecord]) -> CostPerUser:
    costs = [cost for _, _, cost in by_cost(group(calls, lambda c: c.user_id))]
    return CostPerUser(
        active_users=len(costs),
        mean_usd=mean_money(sum(costs, Decimal(0)), len(costs)),
        median_usd=percentile(costs, 50),
        p95_usd=percentile(costs, 95),
        max_usd=max(costs) if costs else None,
    )


def scope_cost(scope: str, total_cost: Decimal, by_feature: Mapping[str, Sequence[CallRecord]]) -> Decimal:
    """The period's cost of a budget's scope: its feature's calls, or all of them for the global budget."""
    parsed = Scope.parse(scope)
    if parsed.kind is ScopeKind.FEATURE:
        return cost_of(by_feature.get(parsed.name, ()))
    return total_cost


def budget_line(
    budget: ScopeBudget, period_cost: Decimal, period: timedelta, now: datetime, month_end: datetime
) -> BudgetLine:
    rate = run_rate_per_day(period_cost, period)
    projection = project(budget.spent_usd, budget.month_usd, rate, now, month_end)
    return BudgetLine(
        scope=budget.scope,
        month_usd=budget.month_usd,
        spent_usd=budget.spent_usd,
        committed_usd=budget.committed_usd,
        utilization=ratio(budget.spent_usd, budget.month_usd),
        period_cost_usd=period_cost,
        rate_usd_per_day=money(rate),
        projected_usd=money(projection.projected_usd),
        projected_utilization=ratio(projection.projected_usd, budget.month_usd),
        exhausted_at=projection.exhausted_at,
    )


def cost_series(
    calls: Sequence[CallRecord],
    start: datetime,
    end: datetime,
    step: timedelta,
    granularity: str,
    features: Sequence[FeatureCost],
) -> CostSeries:
    """Cost per UTC bucket from the one holding ``start`` to the one holding the last instant before ``end``."""
    window = Window.DAY if granularity == "day" else Window.HOUR
    first = span(window, start).start
    count = (span(window, end - timedelta(microseconds=1)).start - first) // step + 1
    totals = [Decimal(0)] * count
    per_feature = {feature.name: [Decimal(0)] * count for feature in features}
    for call in calls:
        index = (call.timestamp.astimezone(UTC) - first) // step
        if 0 <= index < count:  # calls are of the period by contract; a stray one cannot widen the axis
            totals[index] += call.cost_usd
            per_feature[call.feature][index] += call.cost_usd
    return CostSeries(
        granularity=granularity,
        starts=tuple(first + step * n for n in range(count)),
        totals=tuple(totals),
        by_feature=tuple(FeatureSeries(f.name, tuple(per_feature[f.name])) for f in features),
    )
