"""A cost report computed from a period's calls, this month's budgets and recent alerts (pure; money is Decimal).

The report is put together here; its parts are computed in ``costbrake.reports.figures`` (totals, token
statistics, costs, budgets, series: the definitions of *completed* calls and *cache hits* are there),
``costbrake.reports.advice``, ``costbrake.reports.anomalies``, ``costbrake.reports.reducers`` and
``costbrake.reports.reconciliation``; percentiles (nearest-rank) and rounding (derived money to
``MONEY_PLACES``; sums and percentiles exact) in ``costbrake.reports.stats``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from costbrake.formatting import plain_decimal
from costbrake.projection import run_rate_per_day
from costbrake.reports.advice import Advice, advice_for, reducer_advice
from costbrake.reports.anomalies import AnomalyLine, anomaly_lines
from costbrake.reports.figures import (
    BudgetLine,
    CostPerUser,
    CostSeries,
    FeatureCost,
    ModelEfficiency,
    TokenStats,
    Totals,
    UserCost,
    budget_line,
    cost_per_user,
    cost_series,
    feature_costs,
    model_efficiency,
    scope_cost,
    token_stats,
    top_user_costs,
)
from costbrake.reports.inputs import ReportInputs
from costbrake.reports.reconciliation import Reconciliation, reconciliation_of
from costbrake.reports.reducers import CostReducers, reducers_of
from costbrake.reports.stats import cost_of, group, money
from costbrake.scopes import GLOBAL_SCOPE
from costbrake.windows import Window, span

TOP_USERS = 10
HOURLY_UP_TO_DAYS = 2  # periods this short also get an hourly series
SCHEMA_VERSION = "1"
LATE_FIRST_CALL = timedelta(days=1)  # a first call this far into the period: the rate runs from it


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_decimal(value)  # money and ratios: exact
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def build_report(inputs: ReportInputs, top_users: int = TOP_USERS) -> CostReport:
    calls = inputs.calls
    total_cost = cost_of(calls)
    # The rate's basis: the period, or since its first call when that came more than a day into it (a deployment
    # that started in the period would otherwise spread its first busy day over the whole week). Quiet days
    # before a first call are then left out too: the projection errs high, never low.
    first_call = min((c.timestamp for c in calls), default=inputs.start)
    observed_from = first_call if first_call - inputs.start > LATE_FIRST_CALL else inputs.start
    period = inputs.now - observed_from
    month = span(Window.MONTH, inputs.now)
    by_feature = group(calls, lambda c: c.feature)
    budgets = [
        budget_line(budget, scope_cost(budget.scope, total_cost, by_feature), period, inputs.now, month.end)
        for budget in inputs.budgets
    ]
    global_budget = next((b for b in budgets if b.scope == GLOBAL_SCOPE), None)
    features = feature_costs(by_feature, total_cost)
    tokens = token_stats(calls)
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
        run_rate_usd_per_day=money(run_rate_per_day(total_cost, period)),
        rate_since=observed_from,
        daily_budget_usd=money(global_budget.month_usd / days_in_month) if global_budget else None,
        global_budget=global_budget,
        feature_budgets=tuple(b for b in budgets if b.scope != GLOBAL_SCOPE),
        features=features,
        top_users=top_user_costs(calls, total_cost, top_users),
        per_user=cost_per_user(calls),
        models=model_efficiency(calls),
        daily=cost_series(calls, inputs.start, inputs.now, timedelta(days=1), "day", features),
        hourly=(
            cost_series(calls, inputs.start, inputs.now, timedelta(hours=1), "hour", features)
            if inputs.days <= HOURLY_UP_TO_DAYS
            else None
        ),
        anomalies=anomaly_lines(inputs.alerts, inputs.now),
        advice=advice_for(tokens, features, budgets) + reducer_advice(reducers),
        reconciliation=reconciliation_of(inputs.reconciliation),
        reducers=reducers,
    )
