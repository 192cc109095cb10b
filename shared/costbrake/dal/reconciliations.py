"""Each day's reconciliation status, kept in the ledger table so `costbrake report` can show the last 7 days.

Items: pk ``recon#<UTC day>``, sk the provider; the day's figures and findings as JSON; kept 90 days (TTL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute

from costbrake.dal.models import DecimalAttribute, _LedgerMeta, _LedgerModel
from costbrake.dal.tables import Tables, key, unavailable
from costbrake.formatting import plain_decimal
from costbrake.providers.base import ANTHROPIC, OPENAI
from costbrake.reconcile.compare import day_bounds
from costbrake.reconcile.figures import DayReconciliation
from costbrake.reports.inputs import ReconciledDay as StoredDay

RETENTION = timedelta(days=90)
PROVIDERS = (ANTHROPIC, OPENAI)


class ReconciliationItem(_LedgerModel):
    """pk ``recon#<day>``, sk ``<provider>``."""

    class Meta(_LedgerMeta):
        pass

    status = UnicodeAttribute()
    final = BooleanAttribute()
    provider_usd = DecimalAttribute()
    ledger_usd = DecimalAttribute()
    unguarded_usd = DecimalAttribute()
    checked_at = UnicodeAttribute()
    detail = UnicodeAttribute()  # JSON of DayReconciliation.as_dict()
    expires_at = NumberAttribute()  # TTL


class ReconciliationStore:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def save(self, days: Iterable[DayReconciliation]) -> None:
        with unavailable("The ledger could not keep the reconciliation."):
            for day in days:
                _, end = day_bounds(day.day)
                item = ReconciliationItem(
                    f"recon#{day.day.isoformat()}",
                    day.provider,
                    status=day.status.value,
                    final=day.final,
                    provider_usd=day.provider_usd,
                    ledger_usd=day.ledger_usd,
                    unguarded_usd=day.unguarded_usd,
                    checked_at=day.checked_at.isoformat(),
                    detail=json.dumps(day.as_dict(), default=_json_default, sort_keys=True),
                    expires_at=int((end + RETENTION).timestamp()),
                )
                self.tables.put(self.tables.ledger, item)

    def recent(self, days: Sequence[date]) -> list[StoredDay]:
        """The stored days among ``days`` (both providers), oldest first; days never reconciled are absent."""
        keys = [key(f"recon#{day.isoformat()}", provider) for day in days for provider in PROVIDERS]
        with unavailable("The ledger could not be reached."):
            found = self.tables.batch_get(self.tables.ledger, keys)
        stored = [_stored(ReconciliationItem.from_raw_data(raw)) for raw in found]
        return sorted(stored, key=lambda s: (s.day, s.provider))


def _stored(item: ReconciliationItem) -> StoredDay:
    detail: dict[str, Any] = json.loads(item.detail)
    findings = detail.get("findings", [])
    unguarded = [f.get("model") for f in findings if f.get("kind") == "unguarded_spend" and f.get("model")]
    return StoredDay(
        day=date.fromisoformat(item.pk.removeprefix("recon#")),
        provider=item.sk,
        status=item.status,
        final=bool(item.final),
        provider_usd=item.provider_usd,
        ledger_usd=item.ledger_usd,
        unguarded_usd=item.unguarded_usd,
        checked_at=datetime.fromisoformat(item.checked_at),
        drift_models=tuple(detail.get("drift_models", [])),
        unguarded_models=tuple(unguarded),
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
