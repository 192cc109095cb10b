"""Where every budget stands: spent, reserved, limit, utilization, and when it runs out at the current run rate.

The budgets: the global month, every feature with a month budget, and the hour, day and month limits of the
month's top spending users (who they are comes from this month's daily rollups).

- Spend is read from the ledger's counters: exact, and with the open reservations of calls in flight. The
  utilization and the projection use the committed spend (settled + reserved), what the limits are checked
  against. A feature's counters run while it has a month budget: one set mid-month counts from then on, as the
  gateway does.
- The run rate is a scope's cost in the hourly rollups of the trailing ``RUN_RATE_HOURS`` hours (the current,
  partial hour included), per day of the time since the start of the first of those hours with spend, and at
  least an hour. The anomaly pipeline projects the monthly run-out at this same rate: a whole day, so the
  daily rhythm does not bias it, yet recent enough to show a runaway within the hour.
- The projection (``costbrake.projection.project``) carries the committed spend forward at that rate to the
  window's end; a budget that runs out first gets the time it does (now, when it is exhausted already).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costbrake.budgets import BudgetLine, feature_month_line, global_month_line, user_lines
from costbrake.config import Settings
from costbrake.dal.reads import LedgerReader
from costbrake.dal.rollups import RollupStore
from costbrake.policy import DEFAULT_TIER, global_budget, user_limits
from costbrake.projection import Projection, project, run_rate_per_day
from costbrake.records import CounterRef, CounterState, SettingsSnapshot, UserProfile
from costbrake.top import Progress, costs_in, days_back, ranked
from costbrake.windows import Window, WindowSpan, span

RUN_RATE_HOURS = 24
TOP_USERS = 20
GLOBAL = "global"
FEATURE = "feature"
USER = "user"
USER_WINDOWS = (Window.HOUR, Window.DAY, Window.MONTH)
LIMIT_FIELDS = ("hour_usd", "day_usd", "month_usd", "rpm")
_WINDOW_ORDER = {window: rank for rank, window in enumerate(USER_WINDOWS)}


@dataclass(frozen=True)
class Standing:
    """One budget (a scope's limit in one window) now, and where it is heading."""

    kind: str  # GLOBAL, FEATURE or USER
    name: str  # the feature or the user; "global" for the global budget
    window: WindowSpan
    limit_usd: Decimal
    spent_usd: Decimal  # settled
    reserved_usd: Decimal  # held by calls in flight
    projection: Projection  # of the committed spend, to the window's end

    @property
    def scope(self) -> str:
        return GLOBAL if self.kind == GLOBAL else f"{self.kind}#{self.name}"

    @property
    def committed_usd(self) -> Decimal:
        return self.spent_usd + self.reserved_usd

    @property
    def remaining_usd(self) -> Decimal:
        return max(Decimal(0), self.limit_usd - self.committed_usd)

    @property
    def utilization(self) -> Decimal | None:
        """Committed / limit; None for a zero limit."""
        return self.projection.utilization

    @property
    def exhausted(self) -> bool:
        return self.committed_usd >= self.limit_usd


@dataclass(frozen=True)
class Status:
    as_of: datetime
    standings: tuple[Standing, ...]  # worst first
    users: tuple[str, ...]  # the month's top spenders whose limits are included, most expensive first


# ---- pure -----------------------------------------------------------------------------------------


def trailing_hours(now: datetime, hours: int = RUN_RATE_HOURS) -> list[WindowSpan]:
    """The current UTC hour and the ``hours - 1`` before it, oldest first."""
    current = span(Window.HOUR, now)
    return [span(Window.HOUR, current.start - timedelta(hours=back)) for back in range(hours - 1, -1, -1)]


def run_rate(cost_by_hour: Mapping[datetime, Decimal], now: datetime) -> Decimal:
    """USD per day: the hours' cost over the time since the start of the first hour with spend (>= an hour)."""
    spending = [start for start, cost in cost_by_hour.items() if cost > 0]
    if not spending:
        return Decimal(0)
    return run_rate_per_day(sum(cost_by_hour.values(), Decimal(0)), now - min(spending))


def standing(
    kind: str,
    name: str,
    line: BudgetLine,
    counters: Mapping[CounterRef, CounterState],
    rate_per_day: Decimal,
    now: datetime,
) -> Standing:
    """The line's counters (every shard) summed, projected to the end of its window."""
    state = line.state(counters)
    spent, committed = state.spent, state.committed
    projection = project(committed, line.limit, rate_per_day, now, line.span.end)
    return Standing(kind, name, line.span, line.limit, spent, committed - spent, projection)


def worst_first(standings: Iterable[Standing]) -> list[Standing]:
    """Exhausted budgets first (most over), then those projected to run out (soonest first), then the rest by
    utilization; ties by scope and window."""

    def key(s: Standing) -> tuple[bool, float, Decimal, str, int]:
        runs_out = s.projection.exhausted_at
        return (
            runs_out is None,
            runs_out.timestamp() if runs_out else 0.0,
            -(s.utilization if s.utilization is not None else Decimal("Infinity")),
            s.scope,
            _WINDOW_ORDER.get(s.window.window, len(_WINDOW_ORDER)),
        )

    return sorted(standings, key=key)


def limit_sources(snapshot: SettingsSnapshot, profile: UserProfile) -> dict[str, str]:
    """Where each of the user's limits comes from: their override, their tier, or the deployment's default
    (the order ``policy.user_limits`` applies them in)."""
    tier = snapshot.tiers.get(profile.tier) or snapshot.tiers.get(DEFAULT_TIER)
    sources = {}
    for name in LIMIT_FIELDS:
        if getattr(profile.overrides, name) is not None:
            sources[name] = "user override"
        elif tier is not None and getattr(tier.limits, name) is not None:
            sources[name] = f"tier {tier.name}"
        else:
            sources[name] = "deployment default"
    return sources


# ---- reading --------------------------------------------------------------------------------------


def read_run_rates(rollups: RollupStore, scopes: Iterable[str], now: datetime) -> dict[str, Decimal]:
    hours = {hour.key: hour.start for hour in trailing_hours(now)}
    rates = {}
    for scope in dict.fromkeys(scopes):
        found = rollups.rollups_for(scope, hours)
        rates[scope] = run_rate({hours[key]: totals.cost_usd for key, totals in found.items()}, now)
    return rates


def month_top_users(
    rollups: RollupStore, now: datetime, limit: int, progress: Progress | None = None
) -> list[tuple[str, Decimal]]:
    """The month's most expensive users so far, from the daily rollups of each of its days."""
    if limit == 0:
        return []
    days = days_back(now, now.astimezone(UTC).day)
    return ranked(costs_in(rollups, "user#", days, progress), limit)


def read_standings(
    ledger: LedgerReader, rollups: RollupStore, now: datetime, budgets: Sequence[tuple[str, str, BudgetLine]]
) -> list[Standing]:
    """The standing of each (kind, name, line), worst first."""
    counters = ledger.get_counters([ref for _, _, line in budgets for ref in line.counters()])
    rates = read_run_rates(rollups, [line.scope.counter_key for _, _, line in budgets], now)
    return worst_first(
        standing(kind, name, line, counters, rates[line.scope.counter_key], now) for kind, name, line in budgets
    )


def read_status(
    ledger: LedgerReader,
    rollups: RollupStore,
    settings: Settings,
    now: datetime,
    top_users: int = TOP_USERS,
    progress: Progress | None = None,
) -> Status:
    snapshot = ledger.load_settings()
    month = span(Window.MONTH, now)
    budgets: list[tuple[str, str, BudgetLine]] = [
        (GLOBAL, GLOBAL, global_month_line(global_budget(settings, snapshot), month))
    ]
    budgets += [
        (FEATURE, feature.name, feature_month_line(feature, feature.month_usd, month))
        for feature in sorted(snapshot.features.values(), key=lambda f: f.name)
        if feature.month_usd is not None
    ]
    users = [user for user, _ in month_top_users(rollups, now, top_users, progress)]
    for user in users:
        limits = user_limits(settings, snapshot, ledger.get_user(user))
        budgets += [(USER, user, line) for line in user_lines(user, limits, now)]
    return Status(now, tuple(read_standings(ledger, rollups, now, budgets)), tuple(users))


def user_standings(
    ledger: LedgerReader, rollups: RollupStore, settings: Settings, now: datetime, profile: UserProfile
) -> list[Standing]:
    """One user's hour, day and month limits (those set), worst first."""
    limits = user_limits(settings, ledger.load_settings(), profile)
    return read_standings(
        ledger, rollups, now, [(USER, profile.user_id, line) for line in user_lines(profile.user_id, limits, now)]
    )
