"""Which budgets apply to a call, and the conditional charges that reserve it against them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from costbrake.records import (
    ApiKey,
    Charge,
    CounterRef,
    CounterState,
    Feature,
    GlobalBudget,
    Limits,
    RateCharge,
)
from costbrake.scopes import GLOBAL, Scope
from costbrake.windows import Window, WindowSpan, span

_SHARD_QUANTUM = Decimal("0.000001")


@dataclass(frozen=True)
class BudgetLine:
    """One limit a call must stay within: a scope's spend in one UTC window, maybe split into shards."""

    scope: Scope
    limit: Decimal
    span: WindowSpan  # the UTC window: its kind (hour, day, month) and which one
    shards: int = 1

    @property
    def window(self) -> Window:
        return self.span.window

    @property
    def label(self) -> str:
        """What a client or operator reads, e.g. "user alice, day" (header-safe: it goes out in a header)."""
        return f"{self.scope.label}, {self.window}"

    @property
    def sharded(self) -> bool:
        return self.shards > 1

    def counter(self, shard: int | None) -> CounterRef:
        return CounterRef(self.scope.counter_key, self.span.key, shard if self.sharded else None)

    def counters(self) -> list[CounterRef]:
        return [self.counter(shard) for shard in range(self.shards)] if self.sharded else [self.counter(None)]

    @property
    def shard_limit(self) -> Decimal:
        # Rounded down so the shards together never hold more than the limit.
        return (self.limit / self.shards).quantize(_SHARD_QUANTUM, rounding=ROUND_DOWN)

    def charge(self, amount: Decimal, shard: int | None) -> Charge:
        limit = self.shard_limit if self.sharded else self.limit
        return Charge(self.counter(shard), limit, amount, self.span.expires_at)

    def state(self, counters: Mapping[CounterRef, CounterState]) -> CounterState:
        """The line's counters summed over its shards (a counter not in ``counters`` counts zero)."""
        states = [counters[ref] for ref in self.counters() if ref in counters]
        return CounterState(
            committed=sum((s.committed for s in states), Decimal(0)),
            spent=sum((s.spent for s in states), Decimal(0)),
            calls=sum(s.calls for s in states),
        )

    def remaining(self, counters: Mapping[CounterRef, CounterState]) -> Decimal:
        return self.limit - self.state(counters).committed


def budget_lines(
    *,
    user_id: str,
    user_limits: Limits,
    feature: Feature,
    key: ApiKey | None,
    global_budget: GlobalBudget,
    now: datetime,
) -> list[BudgetLine]:
    """Every spend limit that applies to this call (user hour/day/month, feature, key hour/day/month, global)."""
    lines = user_lines(user_id, user_limits, now)
    month = span(Window.MONTH, now)
    if feature.month_usd is not None:
        lines.append(feature_month_line(feature, feature.month_usd, month))
    if key is not None:
        lines += key_lines(key, now)
    lines.append(global_month_line(global_budget, month))
    return lines


def user_lines(user_id: str, limits: Limits, now: datetime) -> list[BudgetLine]:
    """The user's own spend limits (hour, day, month) that are set."""
    return _lines(Scope.user(user_id), limits, now)


def key_lines(key: ApiKey, now: datetime) -> list[BudgetLine]:
    """The key's own limits: everything its calls spend, whichever end users a service key names."""
    return _lines(Scope.key(key.key_id), key.limits, now)


def _lines(scope: Scope, limits: Limits, now: datetime) -> list[BudgetLine]:
    return [BudgetLine(scope, limit, span(window, now)) for window, limit in _windows(limits) if limit is not None]


def _windows(limits: Limits) -> tuple[tuple[Window, Decimal | None], ...]:
    return ((Window.HOUR, limits.hour_usd), (Window.DAY, limits.day_usd), (Window.MONTH, limits.month_usd))


def rate_charge(user_id: str, rpm: int | None, now: datetime) -> tuple[RateCharge, WindowSpan] | None:
    if rpm is None:
        return None
    minute = span(Window.MINUTE, now)
    return RateCharge(CounterRef(Scope.user(user_id).counter_key, minute.key), rpm, minute.expires_at), minute


def feature_month_line(feature: Feature, month_usd: Decimal, month: WindowSpan) -> BudgetLine:
    return BudgetLine(Scope.feature(feature.name), month_usd, month, feature.shards)


def global_month_line(budget: GlobalBudget, month: WindowSpan) -> BudgetLine:
    return BudgetLine(GLOBAL, budget.month_usd, month, budget.shards)
