"""The report's anomalies (pure): the alert messages of the last ``ANOMALY_DAYS`` days, as report lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from costbrake.reports.inputs import ANOMALY_DAYS


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


def anomaly_lines(alerts: Iterable[Mapping[str, Any]], now: datetime) -> tuple[AnomalyLine, ...]:
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
