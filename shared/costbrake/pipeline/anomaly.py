"""Anomaly rules over spend rollups (pure): cost z-score, user spike, budget thresholds, feature share, trends.

The caller reads rollups and budgets into a ``SpendView``; ``detect`` returns what is abnormal about it. Nothing
here reads a clock or a table, so a rule can be replayed on any past or crafted series.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from costbrake.formatting import percent, plain_decimal, usd
from costbrake.scopes import FEATURE_PREFIX, GLOBAL_SCOPE, Scope, ScopeKind
from costbrake.windows import Window, WindowSpan, span

HOUR = timedelta(hours=1)
WEEK_HOURS = 7 * 24
ZERO = Decimal(0)
HUNDRED = Decimal(100)
DETAIL_PLACES = 6  # an alert's details: exact to the micro-dollar, readable in a message


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AnomalyType(StrEnum):
    ZSCORE = "zscore"  # an hour's cost far above the scope's hourly baseline
    USER_SPIKE = "user_spike"  # one user spent more than a slice of the daily global budget within the hour
    BUDGET_THRESHOLD = "budget_threshold"  # month-to-date spend crossed 80/90/95/100% of a monthly budget
    FEATURE_SHARE = "feature_share"  # a feature takes a larger part of the spend than its share of the budget
    TREND_GROWTH = "trend_growth"  # the last 7 days cost much more than the 7 before
    TREND_RUNOUT = "trend_runout"  # at the current run rate the monthly budget runs out before the month ends


@dataclass(frozen=True)
class AnomalyConfig:
    """Every threshold of the rules; defaults are DESIGN's where it names one."""

    zscore_threshold: Decimal = Decimal(3)
    baseline_hours: int = 14 * 24
    min_history_hours: int = 24
    # The standard deviation used is at least this, so a flat history does not turn cents into "infinite sigma":
    # from an all-zero history an hour fires only above 3 x $1; a steady $10/hour above $10 + 3 x $1.
    min_stddev_usd: Decimal = Decimal(1)
    min_stddev_fraction_of_mean: Decimal = Decimal("0.10")
    user_share_of_daily_budget: Decimal = Decimal("0.01")
    budget_thresholds_pct: tuple[int, ...] = (80, 90, 95, 100)
    critical_from_pct: int = 95
    feature_share_alert_pct: int = 120
    # The mix of a few early-month dollars says nothing: judge shares once the month has spent this much.
    feature_share_min_global_fraction: Decimal = Decimal("0.05")
    growth_alert_pct: int = 50
    growth_min_previous_week_usd: Decimal = Decimal(1)
    runout_rate_hours: int = 24  # a whole day, so the daily rhythm does not bias the run rate
    runout_critical_hours: int = 72
    top_n: int = 5
    # Scopes whose hourly series the z-score and growth rules judge: an exact scope or a prefix ending in "#".
    series_scopes: tuple[str, ...] = (GLOBAL_SCOPE, FEATURE_PREFIX)


@dataclass(frozen=True)
class Spender:
    name: str  # user id or feature name
    cost_usd: Decimal


@dataclass(frozen=True)
class SpendView:
    """What the rules read, prepared by the caller from the rollups and budgets.

    ``hourly_cost`` maps a scope ("global", "feature#chat") to its hourly costs keyed by the hour's UTC start,
    covering at least the baseline (14 days) and including the current, partial hour. Hours without a rollup
    count as zero from the scope's first recorded hour on; before it there is no history.
    """

    now: datetime
    hourly_cost: Mapping[str, Mapping[datetime, Decimal]]
    user_hour_cost: Mapping[str, Decimal]  # user id -> cost so far in the current hour
    month_to_date: Mapping[str, Decimal]  # "global" / "feature#f" -> spend so far this month
    monthly_budgets: Mapping[str, Decimal]  # "global" / "feature#f" -> monthly budget; a feature's share follows
    month_top_users: Sequence[Spender] = ()  # optional: named by month-window alerts


@dataclass(frozen=True)
class Anomaly:
    type: AnomalyType
    severity: Severity
    scope: str
    window: WindowSpan  # the window judged; with type and scope (and threshold) it identifies the alert
    current: Decimal  # USD observed
    limit: Decimal | None  # USD at which the rule fires
    utilization: Decimal | None  # current / limit
    summary: str
    details: Mapping[str, str] = field(default_factory=dict)
    top_users: tuple[Spender, ...] = ()
    top_features: tuple[Spender, ...] = ()
    threshold_pct: int | None = None  # budget thresholds: which one was crossed

    @property
    def dedup_key(self) -> str:
        key = f"{self.type.value}#{self.scope}#{self.window.key}"
        return key if self.threshold_pct is None else f"{key}#{self.threshold_pct}"


def detect(view: SpendView, config: AnomalyConfig) -> list[Anomaly]:
    return [
        *zscore_anomalies(view, config),
        *user_spikes(view, config),
        *budget_thresholds(view, config),
        *feature_shares(view, config),
        *growth_trends(view, config),
        *runout_trends(view, config),
    ]


def zscore_anomalies(view: SpendView, config: AnomalyConfig) -> list[Anomaly]:
    hour = span(Window.HOUR, view.now)
    found = []
    for scope, series in sorted(view.hourly_cost.items()):
        if not _matches(scope, config.series_scopes):
            continue
        by_hour = _by_hour(series)
        baseline = _hours(by_hour, hour.start - config.baseline_hours * HOUR, hour.start)
        if len(baseline) < config.min_history_hours:
            continue
        current = by_hour.get(hour.start, ZERO)
        mean = sum(baseline, ZERO) / len(baseline)
        stddev = (sum(((cost - mean) ** 2 for cost in baseline), ZERO) / len(baseline)).sqrt()
        floored = max(stddev, config.min_stddev_usd, mean * config.min_stddev_fraction_of_mean)
        zscore = (current - mean) / floored
        if zscore <= config.zscore_threshold:
            continue
        limit = mean + config.zscore_threshold * floored
        found.append(
            Anomaly(
                type=AnomalyType.ZSCORE,
                severity=Severity.CRITICAL if zscore > 2 * config.zscore_threshold else Severity.WARNING,
                scope=scope,
                window=hour,
                current=current,
                limit=limit,
                utilization=current / limit,
                summary=(
                    f"{scope} cost {usd(current, places=2)} in {hour.key}: {zscore:.1f} sigma above its "
                    f"{len(baseline)}-hour mean of {usd(mean, places=2)}"
                ),
                details={
                    "zscore": f"{zscore:.2f}",
                    "mean_usd": plain_decimal(mean, DETAIL_PLACES),
                    "stddev_usd": plain_decimal(stddev, DETAIL_PLACES),
                    "baseline_hours": str(len(baseline)),
                },
                top_users=_top_users_of_hour(view, config),
                top_features=_top_features_of_hour(view, config),
            )
        )
    return found


def user_spikes(view: SpendView, config: AnomalyConfig) -> list[Anomaly]:
    global_budget = view.monthly_budgets.get(GLOBAL_SCOPE)
    if not global_budget:
        return []
    hour = span(Window.HOUR, view.now)
    daily_budget = global_budget / calendar.monthrange(hour.start.year, hour.start.month)[1]
    limit = daily_budget * config.user_share_of_daily_budget
    return [
        Anomaly(
            type=AnomalyType.USER_SPIKE,
            severity=Severity.CRITICAL,
            scope=Scope.user(user).counter_key,
            window=hour,
            current=cost,
            limit=limit,
            utilization=cost / limit,
            summary=(
                f"user {user} spent {usd(cost, places=2)} in {hour.key}, more than "
                f"{percent(config.user_share_of_daily_budget)} of the daily global budget ({usd(limit, places=2)})"
            ),
            details={"user": user, "daily_global_budget_usd": plain_decimal(daily_budget, DETAIL_PLACES)},
            top_users=_top_users_of_hour(view, config),
            top_features=_top_features_of_hour(view, config),
        )
        for user, cost in sorted(view.user_hour_cost.items())
        if cost > limit
    ]


def budget_thresholds(view: SpendView, config: AnomalyConfig) -> list[Anomaly]:
    month = span(Window.MONTH, view.now)
    found = []
    for scope, budget in sorted(view.monthly_budgets.items()):
        spent = view.month_to_date.get(scope, ZERO)
        if budget <= 0:
            continue
        utilization = spent / budget
        crossed = [pct for pct in config.budget_thresholds_pct if utilization * HUNDRED >= pct]
        if not crossed:
            continue
        # Only the highest: a jump from 70% to 96% is one event, and the lower levels stay unclaimed harmlessly.
        threshold = max(crossed)
        found.append(
            Anomaly(
                type=AnomalyType.BUDGET_THRESHOLD,
                severity=Severity.CRITICAL if threshold >= config.critical_from_pct else Severity.WARNING,
                scope=scope,
                window=month,
                current=spent,
                limit=budget,
                utilization=utilization,
                summary=(
                    f"{scope} spent {usd(spent, places=2)} of its {usd(budget, places=2)} budget for {month.key} "
                    f"({percent(utilization)}, threshold {threshold}%)"
                ),
                details={"threshold_pct": str(threshold)},
                top_users=_top(view.month_top_users, config.top_n),
                top_features=_top_features_of_month(view, config),
                threshold_pct=threshold,
            )
        )
    return found


def feature_shares(view: SpendView, config: AnomalyConfig) -> list[Anomaly]:
    global_budget = view.monthly_budgets.get(GLOBAL_SCOPE)
    global_spent = view.month_to_date.get(GLOBAL_SCOPE, ZERO)
    if not global_budget or global_spent < global_budget * config.feature_share_min_global_fraction:
        return []
    day = span(Window.DAY, view.now)  # a persisting imbalance is repeated at most daily
    found = []
    for scope, budget in sorted(view.monthly_budgets.items()):
        if _feature_of(scope) is None or budget <= 0:
            continue
        planned_share = budget / global_budget
        fair = global_spent * planned_share  # what the feature would have spent at exactly its share
        spent = view.month_to_date.get(scope, ZERO)
        utilization = spent / fair
        if utilization * HUNDRED <= config.feature_share_alert_pct:
            continue
        found.append(
            Anomaly(
                type=AnomalyType.FEATURE_SHARE,
                severity=Severity.WARNING,
                scope=scope,
                window=day,
                current=spent,
                limit=fair,
                utilization=utilization,
                summary=(
                    f"{scope} is {percent(spent / global_spent)} of this month's spend, "
                    f"{percent(utilization)} of its {percent(planned_share)} share"
                ),
                details={
                    "share": plain_decimal(spent / global_spent, DETAIL_PLACES),
                    "planned_share": plain_decimal(planned_share, DETAIL_PLACES),
                },
                top_users=_top(view.month_top_users, config.top_n),
                top_features=_top_features_of_month(view, config),
            )
        )
    return found


def growth_trends(view: SpendView, config: AnomalyConfig) -> list[Anomaly]:
    """Week over week on complete hours: the 168 hours before the current one against the 168 before those."""
    hour = span(Window.HOUR, view.now)
    day = span(Window.DAY, view.now)
    found = []
    for scope, series in sorted(view.hourly_cost.items()):
        if not _matches(scope, config.series_scopes):
            continue
        by_hour = _by_hour(series)
        week_start = hour.start - WEEK_HOURS * HOUR
        previous = _hours(by_hour, week_start - WEEK_HOURS * HOUR, week_start)
        if len(previous) < WEEK_HOURS:
            continue  # without a whole previous week there is nothing to compare with
        last_week = sum(previous, ZERO)
        this_week = sum(_hours(by_hour, week_start, hour.start), ZERO)
        if last_week < config.growth_min_previous_week_usd:
            continue
        growth = (this_week - last_week) / last_week
        if growth * HUNDRED <= config.growth_alert_pct:
            continue
        limit = last_week * (1 + Decimal(config.growth_alert_pct) / HUNDRED)
        found.append(
            Anomaly(
                type=AnomalyType.TREND_GROWTH,
                severity=Severity.WARNING,
                scope=scope,
                window=day,
                current=this_week,
                limit=limit,
                utilization=this_week / limit,
                summary=(
                    f"{scope} cost {usd(this_week, places=2)} in the last 7 days, up {percent(growth)} "
                    f"from {usd(last_week, places=2)} the week before"
                ),
                details={
                    "growth": plain_decimal(growth, DETAIL_PLACES),
                    "previous_week_usd": plain_decimal(last_week, DETAIL_PLACES),
                },
                top_users=_top(view.month_top_users, config.top_n),
                top_features=_top_features_of_month(view, config),
            )
        )
    return found


def runout_trends(view: SpendView, config: AnomalyConfig) -> list[Anomaly]:
    """When the monthly budget runs out at the run rate of the trailing day (current partial hour included)."""
    now = view.now.astimezone(UTC)
    hour = span(Window.HOUR, now)
    day = span(Window.DAY, now)
    month = span(Window.MONTH, now)
    found = []
    for scope, budget in sorted(view.monthly_budgets.items()):
        spent = view.month_to_date.get(scope, ZERO)
        remaining = budget - spent
        rate = _hourly_run_rate(view.hourly_cost.get(scope, {}), now, hour, config.runout_rate_hours)
        if remaining <= 0 or rate <= 0:
            continue  # an exhausted budget is the 100% threshold's alert; no spend never runs out
        hours_left = remaining / rate
        if hours_left >= Decimal(int((month.end - now).total_seconds())) / 3600:
            continue  # lasts the month
        runout_at = now + timedelta(hours=float(hours_left))  # a date to show: float is precise enough
        critical = hours_left <= config.runout_critical_hours
        found.append(
            Anomaly(
                type=AnomalyType.TREND_RUNOUT,
                severity=Severity.CRITICAL if critical else Severity.WARNING,
                scope=scope,
                window=day,
                current=spent,
                limit=budget,
                utilization=spent / budget,
                summary=(
                    f"{scope} runs out of its {usd(budget, places=2)} budget for {month.key} around "
                    f"{runout_at:%Y-%m-%d %H:%M} UTC at {usd(rate * 24, places=2)}/day"
                ),
                details={
                    "projected_runout_at": runout_at.isoformat(timespec="seconds"),
                    "run_rate_usd_per_day": plain_decimal(rate * 24, DETAIL_PLACES),
                    "hours_left": f"{hours_left:.1f}",
                },
                top_users=_top(view.month_top_users, config.top_n),
                top_features=_top_features_of_month(view, config),
            )
        )
    return found


def _hourly_run_rate(series: Mapping[datetime, Decimal], now: datetime, hour: WindowSpan, hours: int) -> Decimal:
    by_hour = _by_hour(series)
    start = hour.start - (hours - 1) * HOUR
    spend = sum(_hours(by_hour, start, hour.end), ZERO)
    first = max(start, min(by_hour, default=hour.start))
    # At least an hour: a few minutes of fresh history would project wild rates.
    elapsed = max(Decimal(int((now - first).total_seconds())) / 3600, Decimal(1))
    return spend / elapsed


def _by_hour(series: Mapping[datetime, Decimal]) -> dict[datetime, Decimal]:
    by_hour: dict[datetime, Decimal] = {}
    for when, cost in series.items():
        aligned = when.tzinfo is UTC and not (when.minute or when.second or when.microsecond)
        start = when if aligned else span(Window.HOUR, when).start
        by_hour[start] = by_hour.get(start, ZERO) + cost
    return by_hour


def _hours(by_hour: Mapping[datetime, Decimal], start: datetime, end: datetime) -> list[Decimal]:
    """Costs of the hours in [start, end) since the first recorded hour, zero where nothing was recorded."""
    if not by_hour:
        return []
    when = max(start, min(by_hour))
    costs = []
    while when < end:
        costs.append(by_hour.get(when, ZERO))
        when += HOUR
    return costs


def _matches(scope: str, patterns: Iterable[str]) -> bool:
    return any(scope == p or (p.endswith("#") and scope.startswith(p)) for p in patterns)


def _top(spenders: Iterable[Spender], n: int) -> tuple[Spender, ...]:
    return tuple(sorted(spenders, key=lambda s: (-s.cost_usd, s.name))[:n])


def _top_users_of_hour(view: SpendView, config: AnomalyConfig) -> tuple[Spender, ...]:
    return _top((Spender(user, cost) for user, cost in view.user_hour_cost.items()), config.top_n)


def _top_features_of_hour(view: SpendView, config: AnomalyConfig) -> tuple[Spender, ...]:
    start = span(Window.HOUR, view.now).start
    return _top(
        (
            Spender(feature, _by_hour(series).get(start, ZERO))
            for scope, series in view.hourly_cost.items()
            if (feature := _feature_of(scope)) is not None
        ),
        config.top_n,
    )


def _top_features_of_month(view: SpendView, config: AnomalyConfig) -> tuple[Spender, ...]:
    return _top(
        (
            Spender(feature, cost)
            for scope, cost in view.month_to_date.items()
            if (feature := _feature_of(scope)) is not None
        ),
        config.top_n,
    )


def _feature_of(scope: str) -> str | None:
    """The feature a scope key names; None for any other scope."""
    parsed = Scope.parse(scope)
    return parsed.name if parsed.kind is ScopeKind.FEATURE else None
