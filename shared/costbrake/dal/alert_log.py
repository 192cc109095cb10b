"""Alerts in the ledger table: "sent once" markers for deduplication, and the log reports list."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from costbrake.dal import models as m
from costbrake.dal.tables import Tables, condition_failed, unavailable
from costbrake.dal.tables import key as item_key

ALERT_LOG_DAYS = 35  # reports list the last 14 days' alerts; a month and a bit for looking back


class AlertLog:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def first_time(self, key: str, expires_at: int, now: datetime) -> bool:
        """True once per key (until ``expires_at``): alert deduplication by a conditional put."""
        item = m.AlertItem(f"alert#{key}", "alert", created_at=now.isoformat(), expires_at=expires_at)
        with unavailable("The ledger could not record the alert."):
            try:
                self.tables.put(self.tables.ledger, item, m.AlertItem.pk.does_not_exist())
            except ClientError as error:
                if condition_failed(error):
                    return False
                raise
        return True

    def forget(self, key: str) -> None:
        """Undo ``first_time`` (an alert that could not be sent must be sent by the retry)."""
        with unavailable("The ledger could not forget the alert."):
            self.tables.delete(self.tables.ledger, item_key(f"alert#{key}", "alert"))

    def log_alert(self, message: Mapping[str, Any], generated_at: datetime) -> None:
        """Keep a published alert for ALERT_LOG_DAYS, for reports ("anomalies of the last 14 days")."""
        day = generated_at.astimezone(UTC)
        item = m.AlertLogItem(
            f"alertlog#{day.date().isoformat()}",
            f"{day.isoformat()}#{message.get('alert_id', '')}",
            message=json.dumps(message, sort_keys=True),
            expires_at=int(day.timestamp()) + ALERT_LOG_DAYS * 86_400,
        )
        with unavailable("The ledger could not log the alert."):
            self.tables.put(self.tables.ledger, item)

    def alerts_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Logged alert messages generated in [start, end), newest first (one Query per day)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        found: list[dict[str, Any]] = []
        day = start.date()
        with unavailable("The ledger could not be reached."):
            while day <= end.date():
                condition = (m.AlertLogItem.pk == f"alertlog#{day}") & m.AlertLogItem.sk.between(
                    start.isoformat(), end.isoformat()
                )
                found += [
                    json.loads(i.message) for i in self.tables.query(self.tables.ledger, m.AlertLogItem, condition)
                ]
                day += timedelta(days=1)
        in_range = [a for a in found if start <= datetime.fromisoformat(a["generated_at"]) < end]
        return sorted(in_range, key=lambda a: a["generated_at"], reverse=True)
