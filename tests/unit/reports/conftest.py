"""Report fixtures: hand-built calls, budgets and alerts on a fixed ``now`` (no tables needed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from costbrake.budget_view import ScopeBudget
from costbrake.records import CallRecord
from costbrake.reports.inputs import ReportInputs
from report_data import FEATURES, HOSTILE_FEATURE, HOSTILE_USER, NOW, budget, busy_week_calls, zscore_alert

MakeInputs = Callable[..., ReportInputs]


@pytest.fixture
def make_call(call_record: Callable[..., CallRecord]) -> Callable[..., CallRecord]:
    """A call record with a unique request id, an hour before NOW unless told otherwise."""
    ids = count()

    def make(**overrides: Any) -> CallRecord:
        fields: dict[str, Any] = {"request_id": f"req-{next(ids)}", "timestamp": NOW - timedelta(hours=1)}
        return call_record(**(fields | overrides))

    return make


@pytest.fixture
def make_inputs() -> MakeInputs:
    def make(
        calls: list[CallRecord],
        days: int = 7,
        budgets: list[ScopeBudget] | None = None,
        alerts: list[dict[str, Any]] | None = None,
    ) -> ReportInputs:
        return ReportInputs(now=NOW, days=days, calls=calls, budgets=budgets or [], alerts=alerts or [])

    return make


@pytest.fixture
def busy_week(make_call: Callable[..., CallRecord], make_inputs: MakeInputs) -> ReportInputs:
    """A week of three features, 41 users, two models, a global and a feature budget, one alert."""
    budgets = [budget("global", "2000", "1450"), budget("feature#deep-analysis", "600", "520")]
    return make_inputs(busy_week_calls(make_call), budgets=budgets, alerts=[zscore_alert()])


@pytest.fixture
def hostile_week(make_call: Callable[..., CallRecord], make_inputs: MakeInputs) -> ReportInputs:
    """The busy week with markup in a feature's name (the second busiest) and in the top user's id."""
    features = {name if name != "code-generation" else HOSTILE_FEATURE: spec for name, spec in FEATURES.items()}
    calls = busy_week_calls(make_call, features)
    calls.append(make_call(user_id=HOSTILE_USER, feature=HOSTILE_FEATURE, cost_usd=Decimal("900")))
    budgets = [budget("global", "2000", "1450"), budget(f"feature#{HOSTILE_FEATURE}", "600", "520")]
    return make_inputs(calls, budgets=budgets, alerts=[zscore_alert(f"feature#{HOSTILE_FEATURE}")])
