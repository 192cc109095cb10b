"""Reconciliation alerts on the alert topic (the same JSON and attributes as every alert) and EMF metrics.

- ``reconciliation`` (warning): a final day whose dollar variance passes the threshold and the floor;
- ``unguarded_spend`` (critical): the provider reports spend costbrake never saw (not waiting for the day to be
  final: a provider's figures only grow, so what it already reports beyond the ledger is real).
Each is sent once per type / provider scope / day (the ledger's ``first_time`` claim), like the anomaly alerts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from costbrake.formatting import percent, plain_decimal, usd
from costbrake.pipeline.alerts import Alert, Publisher, alert_id
from costbrake.pipeline.anomaly import DETAIL_PLACES, Severity
from costbrake.reconcile.compare import MICRO, day_bounds
from costbrake.reconcile.figures import DayReconciliation, DayStatus, Explanation
from costbrake.scopes import PROVIDER_PREFIX
from costbrake.windows import Window, span

RECONCILIATION = "reconciliation"
UNGUARDED_SPEND = "unguarded_spend"
ALERT_TYPES = (RECONCILIATION, UNGUARDED_SPEND)
EMF_NAMESPACE = "CostbrakeReconciliation"  # its own namespace: the Costbrake one holds the gateway's metrics only
EMF_METRICS = ("ProviderCostUsd", "LedgerCostUsd", "VarianceUsd", "UnguardedUsd")
EMF_DIMENSIONS = ("provider",)


class Claims(Protocol):
    """The ledger's alert deduplication (``Ledger.first_time`` / ``forget``)."""

    def first_time(self, key: str, expires_at: int, now: datetime) -> bool: ...

    def forget(self, key: str) -> None: ...


class InMemoryClaims:
    def __init__(self) -> None:
        self.claimed: dict[str, int] = {}

    def first_time(self, key: str, expires_at: int, now: datetime) -> bool:
        if key in self.claimed:
            return False
        self.claimed[key] = expires_at
        return True

    def forget(self, key: str) -> None:
        self.claimed.pop(key, None)


@dataclass(frozen=True)
class PendingAlert:
    dedup_key: str
    alert: Alert
    expires_at: int  # the dedup claim's TTL


def alerts_for(days: Iterable[DayReconciliation], now: datetime, look_back_days: int) -> list[PendingAlert]:
    """The alerts the reconciled days call for, before deduplication."""
    found: list[PendingAlert] = []
    for day in days:
        expires_at = dedup_expiry(day, look_back_days)
        if day.status is DayStatus.UNGUARDED:
            key, alert = _unguarded(day, now)
            found.append(PendingAlert(key, alert, expires_at))
        if day.final and day.over_threshold:
            key, alert = _variance(day, now)
            found.append(PendingAlert(key, alert, expires_at))
    return found


def dedup_expiry(day: DayReconciliation, look_back_days: int) -> int:
    """A claim outlives every later run that still looks at the day (else the next run alerts it again)."""
    _, end = day_bounds(day.day)
    return int((end + timedelta(days=look_back_days + 2)).timestamp())


def publish_new(pending: Sequence[PendingAlert], claims: Claims, publisher: Publisher, now: datetime) -> list[Alert]:
    """Publish each alert not sent before for its type/scope/day; a failed publish releases its claim."""
    sent: list[Alert] = []
    for item in pending:
        if not claims.first_time(item.dedup_key, item.expires_at, now):
            continue
        try:
            publisher.publish(item.alert)
        except Exception:
            claims.forget(item.dedup_key)
            raise
        sent.append(item.alert)
    return sent


def _base(day: DayReconciliation, kind: str) -> tuple[str, str]:
    window = span(Window.DAY, day_bounds(day.day)[0])
    key = f"{kind}#{PROVIDER_PREFIX}{day.provider}#{window.key}"
    return key, alert_id(key)


def _unguarded(day: DayReconciliation, now: datetime) -> tuple[str, Alert]:
    key, identifier = _base(day, UNGUARDED_SPEND)
    findings = [f for f in day.findings if f.kind is Explanation.UNGUARDED_SPEND]
    models = sorted({f.model for f in findings if f.model})
    keys = sorted({k for line in day.lines if line.unguarded_usd > 0 for k in line.api_key_ids})
    by_model = "; ".join(
        f"{f.model}: ${plain_decimal(f.usd or Decimal(0), DETAIL_PLACES)} ({f.detail})" for f in findings
    )
    summary = (
        f"{day.provider} reports {usd(day.unguarded_usd, places=2)} on {day.day.isoformat()} that costbrake never saw"
        f" ({', '.join(models) or 'unknown model'}): usage outside the gateway"
    )
    return (
        key,
        Alert(
            alert_id=identifier,
            type=UNGUARDED_SPEND,
            severity=Severity.CRITICAL,
            scope=f"{PROVIDER_PREFIX}{day.provider}",
            window=span(Window.DAY, day_bounds(day.day)[0]),
            generated_at=now,
            summary=summary,
            current=day.unguarded_usd,
            limit=None,
            utilization=None,
            details={
                "provider": day.provider,
                "day": day.day.isoformat(),
                "unguarded_usd": plain_decimal(day.unguarded_usd, DETAIL_PLACES),
                "provider_usd": plain_decimal(day.provider_usd, DETAIL_PLACES),
                "ledger_usd": plain_decimal(day.ledger_usd, DETAIL_PLACES),
                "models": ",".join(models),
                "api_key_ids": ",".join(keys),
                "final": str(day.final).lower(),
                "by_model": by_model,
            },
        ),
    )


def _variance(day: DayReconciliation, now: datetime) -> tuple[str, Alert]:
    key, identifier = _base(day, RECONCILIATION)
    fraction = day.variance_fraction
    explanations = sorted({f.kind.value for f in day.findings if f.kind is not Explanation.REPORTING_DELAY})
    drift = ", ".join(day.drift_models)
    pct = "n/a" if fraction is None else percent(fraction, signed=True)
    summary = (
        f"{day.provider} billed {usd(day.provider_usd, places=2)} on {day.day.isoformat()}, costbrake recorded "
        f"{usd(day.ledger_usd, places=2)} ({pct})" + (f"; price drift on {drift}" if drift else "")
    )
    return (
        key,
        Alert(
            alert_id=identifier,
            type=RECONCILIATION,
            severity=Severity.WARNING,
            scope=f"{PROVIDER_PREFIX}{day.provider}",
            window=span(Window.DAY, day_bounds(day.day)[0]),
            generated_at=now,
            summary=summary,
            current=day.provider_usd,
            limit=day.ledger_usd,
            utilization=None if day.ledger_usd == 0 else (day.provider_usd / day.ledger_usd).quantize(MICRO),
            details={
                "provider": day.provider,
                "day": day.day.isoformat(),
                "variance_usd": plain_decimal(day.variance_usd, DETAIL_PLACES),
                "variance_fraction": "" if fraction is None else plain_decimal(fraction, DETAIL_PLACES),
                "unguarded_usd": plain_decimal(day.unguarded_usd, DETAIL_PLACES),
                "drift_models": drift,
                "explanations": ",".join(explanations),
            },
        ),
    )


def emf_lines(days: Iterable[DayReconciliation]) -> list[str]:
    """One CloudWatch embedded-metric-format record per reconciled day and provider, stamped with the day.

    A day is reported again by every run that looks at it: the dashboard shows the Maximum per day.
    """
    lines = []
    for day in days:
        start, _ = day_bounds(day.day)
        record = {
            "_aws": {
                "Timestamp": int(start.timestamp() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": EMF_NAMESPACE,
                        "Dimensions": [list(EMF_DIMENSIONS)],
                        "Metrics": [{"Name": name, "Unit": "None"} for name in EMF_METRICS],
                    }
                ],
            },
            "provider": day.provider,
            "ProviderCostUsd": float(day.provider_usd),  # EMF values are numbers; the exact figures are in the ledger
            "LedgerCostUsd": float(day.ledger_usd),
            "VarianceUsd": float(day.variance_usd),
            "UnguardedUsd": float(day.unguarded_usd),
            "day": day.day.isoformat(),
            "status": day.status.value,
            "exact_variance_usd": plain_decimal(day.variance_usd),
        }
        lines.append(json.dumps(record, sort_keys=True))
    return lines
