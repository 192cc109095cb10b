"""What a report is built from, read by ``costbrake.reports.source`` (DynamoDB) or made by hand in tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from costbrake.budget_view import ScopeBudget
from costbrake.records import CallRecord

ANOMALY_DAYS = 14  # a report lists the alerts of this many days
RECONCILIATION_DAYS = 7  # and the reconciliation status of this many


@dataclass(frozen=True)
class ReconciledDay:
    """A day x provider as the daily reconciler left it (``costbrake.dal.reconciliations``; docs/reconciliation.md)."""

    day: date
    provider: str
    status: str  # "ok" | "pending" | "variance" | "unguarded"
    final: bool
    provider_usd: Decimal
    ledger_usd: Decimal
    unguarded_usd: Decimal
    checked_at: datetime
    drift_models: tuple[str, ...] = ()
    unguarded_models: tuple[str, ...] = ()

    @property
    def variance_usd(self) -> Decimal:
        return self.provider_usd - self.ledger_usd


@dataclass(frozen=True)
class ReportInputs:
    now: datetime  # UTC; the report covers [now - days, now)
    days: int
    calls: Sequence[CallRecord]  # every call record of the period (errors included: cost 0 unless billed)
    budgets: Sequence[ScopeBudget]  # this month's global and feature budgets with month-to-date spend (counters)
    alerts: Sequence[Mapping[str, Any]]  # alert messages (docs/alerts.md) of the last ANOMALY_DAYS days, newest first
    # The reconciler's status of the period's last RECONCILIATION_DAYS days, oldest first (empty: it is off).
    reconciliation: Sequence[ReconciledDay] = ()

    @property
    def start(self) -> datetime:
        return self.now - timedelta(days=self.days)
