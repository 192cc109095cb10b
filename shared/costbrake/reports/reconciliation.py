"""The report's reconciliation section: what the daily reconciler kept for the period's last days."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from costbrake.reports.inputs import ReconciledDay


@dataclass(frozen=True)
class ReconciliationLine:
    day: str  # UTC day, ISO
    provider: str
    status: str  # ok | pending | variance | unguarded
    final: bool
    provider_usd: Decimal
    costbrake_usd: Decimal
    variance_usd: Decimal
    unguarded_usd: Decimal
    note: str  # the models concerned (unguarded spend, price drift)


@dataclass(frozen=True)
class Reconciliation:
    """The providers' own reports against the ledger over the period's last days (docs/reconciliation.md)."""

    checked: bool  # False: no reconciled day (the reconciler is off until an admin key is configured)
    status: str  # "off" | "ok" | "attention"
    unguarded_usd: Decimal
    variance_usd: Decimal
    lines: tuple[ReconciliationLine, ...]  # oldest first


def reconciliation_of(days: Sequence[ReconciledDay]) -> Reconciliation:
    lines = tuple(
        ReconciliationLine(
            day=d.day.isoformat(),
            provider=d.provider,
            status=d.status,
            final=d.final,
            provider_usd=d.provider_usd,
            costbrake_usd=d.ledger_usd,
            variance_usd=d.variance_usd,
            unguarded_usd=d.unguarded_usd,
            note="; ".join(
                part
                for part in (
                    f"unguarded: {', '.join(d.unguarded_models)}" if d.unguarded_models else "",
                    f"price drift: {', '.join(d.drift_models)}" if d.drift_models else "",
                )
                if part
            ),
        )
        for d in sorted(days, key=lambda d: (d.day, d.provider))
    )
    attention = any(line.status in ("variance", "unguarded") for line in lines)
    return Reconciliation(
        checked=bool(lines),
        status="off" if not lines else ("attention" if attention else "ok"),
        unguarded_usd=sum((line.unguarded_usd for line in lines), Decimal(0)),
        variance_usd=sum((line.variance_usd for line in lines if line.final), Decimal(0)),
        lines=lines,
    )
