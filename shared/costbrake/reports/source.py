"""Reads a report's inputs from a deployment: the period's call records, this month's budgets, recent alerts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from costbrake.config import Settings
from costbrake.dal import Ledger
from costbrake.policy import monthly_budgets
from costbrake.records import CallRecord
from costbrake.reports.inputs import ANOMALY_DAYS, RECONCILIATION_DAYS, ReconciledDay, ReportInputs

Progress = Callable[[int, int], None]  # (days read, days in the period)


def collect_inputs(
    ledger: Ledger, settings: Settings, now: datetime, days: int, progress: Progress | None = None
) -> ReportInputs:
    if days < 1:
        raise ValueError("a report covers at least one day")
    start = now - timedelta(days=days)
    calls: list[CallRecord] = []
    for day in range(days):  # a day at a time, so a long read can show its progress
        calls += ledger.calls_between(start + timedelta(days=day), start + timedelta(days=day + 1))
        if progress:
            progress(day + 1, days)
    return ReportInputs(
        now=now,
        days=days,
        calls=calls,
        budgets=monthly_budgets(ledger, settings, now),
        alerts=ledger.alerts_between(now - timedelta(days=ANOMALY_DAYS), now),
        reconciliation=reconciled_days(settings, now, min(days, RECONCILIATION_DAYS)),
    )


def reconciled_days(settings: Settings, now: datetime, days: int) -> list[ReconciledDay]:
    """What the daily reconciler kept for the last ``days`` UTC days (today included), oldest first."""
    from costbrake.reconcile.compare import days_back
    from costbrake.reconcile.store import ReconciliationStore

    return ReconciliationStore(settings).recent(days_back(now, days))
