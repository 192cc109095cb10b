"""Reads a report's inputs from a deployment: the period's call records, this month's budgets, recent alerts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from costbrake.budget_view import monthly_budgets
from costbrake.config import Settings
from costbrake.records import CallRecord
from costbrake.reports.inputs import ANOMALY_DAYS, RECONCILIATION_DAYS, ReconciledDay, ReportInputs

if TYPE_CHECKING:
    from costbrake.dal.tables import Tables
    from costbrake.wiring import Stores

Progress = Callable[[int, int], None]  # (days read, days in the period)


def collect_inputs(
    stores: Stores, settings: Settings, now: datetime, days: int, progress: Progress | None = None
) -> ReportInputs:
    """The period's calls, this month's budgets, recent alerts and reconciliations: a report reads every store."""
    if days < 1:
        raise ValueError("a report covers at least one day")
    start = now - timedelta(days=days)
    calls: list[CallRecord] = []
    for day in range(days):  # a day at a time, so a long read can show its progress
        calls += stores.calls.calls_between(start + timedelta(days=day), start + timedelta(days=day + 1))
        if progress:
            progress(day + 1, days)
    return ReportInputs(
        now=now,
        days=days,
        calls=calls,
        budgets=monthly_budgets(stores.admin, settings, now),
        alerts=stores.alerts.alerts_between(now - timedelta(days=ANOMALY_DAYS), now),
        reconciliation=reconciled_days(stores.tables, now, min(days, RECONCILIATION_DAYS)),
    )


def reconciled_days(tables: Tables, now: datetime, days: int) -> list[ReconciledDay]:
    """What the daily reconciler kept for the last ``days`` UTC days (today included), oldest first."""
    from costbrake.dal.reconciliations import ReconciliationStore
    from costbrake.reconcile.compare import days_back

    return ReconciliationStore(tables).recent(days_back(now, days))
