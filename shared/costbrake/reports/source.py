"""Reads a report's inputs from a deployment: the period's call records, this month's budgets, recent alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from costbrake.config import Settings
from costbrake.dal import Ledger
from costbrake.policy import monthly_budgets
from costbrake.reports.inputs import ANOMALY_DAYS, ReportInputs


def collect_inputs(ledger: Ledger, settings: Settings, now: datetime, days: int) -> ReportInputs:
    if days < 1:
        raise ValueError("a report covers at least one day")
    start = now - timedelta(days=days)
    return ReportInputs(
        now=now,
        days=days,
        calls=list(ledger.calls_between(start, now)),
        budgets=monthly_budgets(ledger, settings, now),
        alerts=ledger.alerts_between(now - timedelta(days=ANOMALY_DAYS), now),
    )
