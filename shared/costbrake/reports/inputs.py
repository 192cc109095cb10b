"""What a report is built from, read by ``costbrake.reports.source`` (DynamoDB) or made by hand in tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from costbrake.policy import ScopeBudget
from costbrake.records import CallRecord

ANOMALY_DAYS = 14  # a report lists the alerts of this many days


@dataclass(frozen=True)
class ReportInputs:
    now: datetime  # UTC; the report covers [now - days, now)
    days: int
    calls: Sequence[CallRecord]  # every call record of the period (errors included: cost 0 unless billed)
    budgets: Sequence[ScopeBudget]  # this month's global and feature budgets with month-to-date spend (counters)
    alerts: Sequence[Mapping[str, Any]]  # alert messages (docs/alerts.md) of the last ANOMALY_DAYS days, newest first

    @property
    def start(self) -> datetime:
        return self.now - timedelta(days=self.days)
