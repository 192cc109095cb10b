"""A cost report computed from a period's calls, this month's budgets and recent alerts (pure; money is Decimal).

Definitions used throughout:

- *completed* calls are those with status "ok" that the provider answered: token statistics, truncation and
  cache hit rates are taken over them (a failed call has no answer to measure, a response-cache hit used no
  tokens); cost per call is taken over every call (a failure can be billed).
- a *cache hit* is a call that read cached tokens, the aggregator's rule (``costbrake.pipeline.rollups``).
- percentiles are nearest-rank (see ``percentile``).
- derived money (means, run rates, projections) is rounded to ``MONEY_PLACES``; sums and percentiles are exact.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from costbrake.decimals import plain_decimal, usd_text
from costbrake.policy import ScopeBudget
from costbrake.projection import project, run_rate_per_day
from costbrake.records import CallRecord
from costbrake.reports.inputs import ANOMALY_DAYS, ReportInputs
from costbrake.reports.reconciliation import Reconciliation, reconciliation_of
from costbrake.reports.reducers import CostReducers, cache_advice, reducers_of, unhelpful_caches
from costbrake.scopes import FEATURE_PREFIX, GLOBAL_SCOPE
from costbrake.windows import Window, span

TRUNCATION_ADVICE_ABOVE = Decimal("0.05")  # more truncated answers than this: advise
CACHE_HELPFUL_FROM = Decimal("0.20")  # a lower hit rate means caching is not helping...
CACHE_MIN_CALLS = 100  # ...once there are this many completed calls to judge by
TOP_USERS = 10
HOURLY_UP_TO_DAYS = 2  # periods this short also get an hourly series
MONEY_PLACES = Decimal("0.00000001")
RATIO_PLACES = Decimal("0.000001")
TOKEN_PLACES = Decimal("0.01")
SCHEMA_VERSION = "1"

T = TypeVar("T", int, Decimal)


def percentile(values: Iterable[T], pct: int) -> T | None:
    """The nearest-rank ``pct``-th percentile: the value at 1-based rank ceil(pct / 100 * n) of the n sorted values.

    It is always one of the values (no interpolation), the smallest one that at least ``pct`` % of the values do not
    exceed: the p95 of 20 values is the 19th smallest, of 10 values the largest, of one value that value; the p50 of
    4 values is the 2nd smallest. None when there are no values.
    """
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 < pct <= 100:
        raise ValueError(f"a percentile is in (0, 100], not {pct}")
    rank = -(-pct * len(ordered) // 100)  # exact integer ceiling
    return ordered[rank - 1]


# ---- the report ------------------------------------------------------------------------------------------------

LATE_FIRST_CALL = timedelta(days=1)  # a first call this far into the period: the rate runs from it


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


@dataclass(frozen=True)
class AnomalyLine:
    generated_at: datetime | None
    type: str
    severity: str
    scope: str
    window: str
    current_usd: Decimal | None
    limit_usd: Decimal | None
    summary: str


@dataclass(frozen=True)
class Advice:
    code: str  # "truncation" | "cache" | "response_cache" | "budget_runout"
    message: str


@dataclass(frozen=True)
class CostReport:
    start: datetime
    end: datetime
    days: int
    month: str  # "m#2026-11": the month the budgets and projections are about
    totals: Totals
    tokens: TokenStats
    run_rate_usd_per_day: Decimal  # the period's cost per day since ``rate_since``
    rate_since: datetime  # the period's start, or its first call if that came LATE_FIRST_CALL into it
    daily_budget_usd: Decimal | None  # global month budget / days in the month
    global_budget: BudgetLine | None
    feature_budgets: tuple[BudgetLine, ...]
    features: tuple[FeatureCost, ...]  # most expensive first
    top_users: tuple[UserCost, ...]
    per_user: CostPerUser
    models: tuple[ModelEfficiency, ...]  # most expensive first
    daily: CostSeries
    hourly: CostSeries | None  # only for periods of up to HOURLY_UP_TO_DAYS days
    anomalies: tuple[AnomalyLine, ...]  # newest first
    advice: tuple[Advice, ...]
    reconciliation: Reconciliation = field(
        default_factory=lambda: Reconciliation(False, "off", Decimal(0), Decimal(0), ())
    )
    # The response cache and history truncation (issue 12; costbrake.reports.reducers).
    reducers: CostReducers = field(default_factory=lambda: reducers_of(()))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: money and ratios as plain decimal strings (exact, no exponent), datetimes ISO 8601."""
        return {"schema_version": SCHEMA_VERSION, **_jsonable(dataclasses.asdict(self))}


decimal_text = plain_decimal  # money and ratios in the report's JSON


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


# ---- building it -----------------------------------------------------------------------------------------------


def build_report(inputs: ReportInputs, top_users: int = TOP_USERS) -> CostReport:
    calls = inputs.calls
    total_cost = _cost(calls)
    # The rate's basis: the period, or since its first call when that came more than a day into it (a deployment
    # that started in the period would otherwise spread its first busy day over the whole week). Quiet days
    # before a first call are then left out too: the projection errs high, never low.
    first_call = min((c.timestamp for c in calls), default=inputs.start)
    observed_from = first_call if first_call - inputs.start > LATE_FIRST_CALL else inputs.start
    period = inputs.now - observed_from
    month = span(Window.MONTH, inputs.now)
    by_feature = _group(calls, lambda c: c.feature)
    budgets = [
        _budget_line(budget, _scope_cost(budget.scope, total_cost, by_feature), period, inputs.now, month.end)
        for budget in inputs.budgets
    ]
    global_budget = next((b for b in budgets if b.scope == GLOBAL_SCOPE), None)
    features = _features(by_feature, total_cost)
    tokens = _token_stats(calls)
    reducers = reducers_of(calls)
    days_in_month = (month.end - month.start).days
    return CostReport(
        start=inputs.start,
        end=inputs.now,
        days=inputs.days,
        month=month.key,
        totals=Totals(
            cost_usd=total_cost,
            calls=len(calls),
            errors=sum(1 for c in calls if c.status != "ok"),
            input_tokens=sum(c.input_tokens for c in calls),
            output_tokens=sum(c.output_tokens for c in calls),
        ),
        tokens=tokens,
        run_rate_usd_per_day=_money(run_rate_per_day(total_cost, period)),
        rate_since=observed_from,
        daily_budget_usd=_money(global_budget.month_usd / days_in_month) if global_budget else None,
        global_budget=global_budget,
        feature_budgets=tuple(b for b in budgets if b.scope != GLOBAL_SCOPE),
        features=features,
        top_users=_top_users(calls, total_cost, top_users),
        per_user=_cost_per_user(calls),
        models=_models(calls),
        daily=_series(calls, inputs.start, inputs.now, timedelta(days=1), "day", features),
        hourly=(
            _series(calls, inputs.start, inputs.now, timedelta(hours=1), "hour", features)
            if inputs.days <= HOURLY_UP_TO_DAYS
            else None
        ),
        anomalies=_anomalies(inputs.alerts, inputs.now),
        advice=_advice(tokens, features, budgets) + _reducer_advice(reducers),
        reconciliation=reconciliation_of(inputs.reconciliation),
        reducers=reducers,
    )


def _money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_PLACES)


def _ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(RATIO_PLACES) if whole else None


def _mean_money(total: Decimal, count: int) -> Decimal | None:
    return _money(total / count) if count else None


def _mean_tokens(values: Sequence[int]) -> Decimal | None:
    return (Decimal(sum(values)) / len(values)).quantize(TOKEN_PLACES) if values else None


def _cost(calls: Iterable[CallRecord]) -> Decimal:
    return sum((c.cost_usd for c in calls), Decimal(0))


def _group(calls: Iterable[CallRecord], key: Callable[[CallRecord], str]) -> dict[str, list[CallRecord]]:
    groups: dict[str, list[CallRecord]] = defaultdict(list)
    for call in calls:
        groups[key(call)].append(call)
    return groups


def _by_cost(groups: Mapping[str, Sequence[CallRecord]]) -> list[tuple[str, Sequence[CallRecord], Decimal]]:
    """Groups with their cost, most expensive first (then by name, so equal costs keep a stable order)."""
    costed = [(name, members, _cost(members)) for name, members in groups.items()]
    return sorted(costed, key=lambda item: (-item[2], item[0]))


def is_cache_hit(call: CallRecord) -> bool:
    return call.cache_read_tokens > 0


def _token_stats(calls: Sequence[CallRecord]) -> TokenStats:
    completed = [c for c in calls if c.status == "ok" and not c.cache_hit]  # a response-cache hit used no tokens
    inputs = [c.input_tokens for c in completed]
    outputs = [c.output_tokens for c in completed]
    truncations = sum(1 for c in completed if c.truncated)
    cache_hits = sum(1 for c in completed if is_cache_hit(c))
    return TokenStats(
        completed_calls=len(completed),
        mean_input_tokens=_mean_tokens(inputs),
        p95_input_tokens=percentile(inputs, 95),
        mean_output_tokens=_mean_tokens(outputs),
        p95_output_tokens=percentile(outputs, 95),
        output_input_ratio=_ratio(sum(outputs), sum(inputs)),
        truncations=truncations,
        truncation_rate=_ratio(truncations, len(completed)),
        cache_hits=cache_hits,
        cache_hit_rate=_ratio(cache_hits, len(completed)),
        cache_writes=sum(1 for c in completed if c.cache_write_tokens > 0),
    )


def _features(by_feature: Mapping[str, Sequence[CallRecord]], total_cost: Decimal) -> tuple[FeatureCost, ...]:
    return tuple(
        FeatureCost(
            name=name,
            calls=len(members),
            errors=sum(1 for c in members if c.status != "ok"),
            cost_usd=cost,
            share=_ratio(cost, total_cost),
            mean_cost_usd=_mean_money(cost, len(members)),
            p95_cost_usd=percentile((c.cost_usd for c in members), 95),
            tokens=_token_stats(members),
        )
        for name, members, cost in _by_cost(by_feature)
    )


def _models(calls: Sequence[CallRecord]) -> tuple[ModelEfficiency, ...]:
    return tuple(
        ModelEfficiency(
            name=name,
            calls=len(members),
            cost_usd=cost,
            mean_cost_usd=_mean_money(cost, len(members)),
            usd_per_1k_tokens=_per_1k(cost, sum(c.input_tokens + c.output_tokens for c in members)),
            tokens=_token_stats(members),
        )
        for name, members, cost in _by_cost(_group(calls, lambda c: c.model))
    )


def _per_1k(cost: Decimal, tokens: int) -> Decimal | None:
    return _money(cost * 1000 / tokens) if tokens else None


def _top_users(calls: Sequence[CallRecord], total_cost: Decimal, limit: int) -> tuple[UserCost, ...]:
    return tuple(
        UserCost(user_id=name, cost_usd=cost, calls=len(members), share=_ratio(cost, total_cost))
        for name, members, cost in _by_cost(_group(calls, lambda c: c.user_id))[:limit]
    )


def _cost_per_user(calls: Sequence[CallRecord]) -> CostPerUser:
    costs = [cost for _, _, cost in _by_cost(_group(calls, lambda c: c.user_id))]
    return CostPerUser(
        active_users=len(costs),
        mean_usd=_mean_money(sum(costs, Decimal(0)), len(costs)),
        median_usd=percentile(costs, 50),
        p95_usd=percentile(costs, 95),
        max_usd=max(costs) if costs else None,
    )


def _scope_cost(scope: str, total_cost: Decimal, by_feature: Mapping[str, Sequence[CallRecord]]) -> Decimal:
    if scope.startswith(FEATURE_PREFIX):
        return _cost(by_feature.get(scope.removeprefix(FEATURE_PREFIX), ()))
    return total_cost


def _budget_line(
    budget: ScopeBudget, period_cost: Decimal, period: timedelta, now: datetime, month_end: datetime
) -> BudgetLine:
    rate = run_rate_per_day(period_cost, period)
    projection = project(budget.spent_usd, budget.month_usd, rate, now, month_end)
    return BudgetLine(
        scope=budget.scope,
        month_usd=budget.month_usd,
        spent_usd=budget.spent_usd,
        committed_usd=budget.committed_usd,
        utilization=_ratio(budget.spent_usd, budget.month_usd),
        period_cost_usd=period_cost,
        rate_usd_per_day=_money(rate),
        projected_usd=_money(projection.projected_usd),
        projected_utilization=_ratio(projection.projected_usd, budget.month_usd),
        exhausted_at=projection.exhausted_at,
    )


def _series(
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


def _anomalies(alerts: Iterable[Mapping[str, Any]], now: datetime) -> tuple[AnomalyLine, ...]:
    """Alert messages (docs/alerts.md) of the last ANOMALY_DAYS days; fields a message lacks are left empty."""
    lines = [_anomaly_line(alert) for alert in alerts]
    since = now - timedelta(days=ANOMALY_DAYS)
    return tuple(line for line in lines if line.generated_at is None or since <= line.generated_at <= now)


def _anomaly_line(alert: Mapping[str, Any]) -> AnomalyLine:
    return AnomalyLine(
        generated_at=_parse_time(alert.get("generated_at")),
        type=str(alert.get("type", "")),
        severity=str(alert.get("severity", "")),
        scope=str(alert.get("scope", "")),
        window=str(alert.get("window", "")),
        current_usd=_parse_decimal(alert.get("current_usd")),
        limit_usd=_parse_decimal(alert.get("limit_usd")),
        summary=str(alert.get("summary", "")),
    )


def _parse_time(value: Any) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _parse_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


# ---- advice ----------------------------------------------------------------------------------------------------


def _pct(fraction: Decimal) -> str:
    return f"{fraction * 100:.1f}%"


def _advice(tokens: TokenStats, features: Sequence[FeatureCost], budgets: Sequence[BudgetLine]) -> tuple[Advice, ...]:
    advice: list[Advice] = []
    if tokens.truncation_rate is not None and tokens.truncation_rate > TRUNCATION_ADVICE_ABOVE:
        worst = [
            f"{f.name} {_pct(f.tokens.truncation_rate)}"
            for f in sorted(features, key=lambda f: -(f.tokens.truncation_rate or 0))
            if f.tokens.truncation_rate is not None and f.tokens.truncation_rate > TRUNCATION_ADVICE_ABOVE
        ]
        advice.append(
            Advice(
                "truncation",
                f"{_pct(tokens.truncation_rate)} of answers were cut off at max_tokens "
                f"({tokens.truncations} of {tokens.completed_calls}; above {_pct(TRUNCATION_ADVICE_ABOVE)}): "
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
                f"Caching is not helping: {_pct(rate)} cache hits over {tokens.completed_calls} calls "
                f"(below {_pct(CACHE_HELPFUL_FROM)}) while {tokens.cache_writes} calls paid to write the cache; "
                "keep the cached prefix identical across calls or stop caching it.",
            )
        )
    advice += [Advice("budget_runout", _runout(line)) for line in budgets if line.exhausted_at is not None]
    return tuple(advice)


def _reducer_advice(reducers: CostReducers) -> tuple[Advice, ...]:
    return tuple(Advice("response_cache", cache_advice(feature)) for feature in unhelpful_caches(reducers))


def _runout(line: BudgetLine) -> str:
    if line.spent_usd >= line.month_usd:
        return (
            f"The {line.scope} budget of {usd_text(line.month_usd)} is spent ({usd_text(line.spent_usd)} this month)."
        )
    return (
        f"At {usd_text(line.rate_usd_per_day)}/day the {line.scope} budget of {usd_text(line.month_usd)} runs out on "
        f"{line.exhausted_at:%Y-%m-%d %H:%M} UTC (projected month {usd_text(line.projected_usd)})."
    )
