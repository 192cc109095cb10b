"""Each day's reconciliation status, kept in the ledger table so `costbrake report` can show the last 7 days.

Items: pk ``recon#<UTC day>``, sk the provider; the day's figures and findings as JSON; kept 90 days (TTL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException

from costbrake.config import Settings
from costbrake.dal.ledger import bind
from costbrake.dal.models import DecimalAttribute, _LedgerMeta, _LedgerModel
from costbrake.decimals import plain_decimal
from costbrake.errors import LedgerUnavailable
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
    def __init__(self, settings: Settings) -> None:
        bind({ReconciliationItem: settings.ledger_table}, settings)

    def save(self, days: Iterable[DayReconciliation]) -> None:
        try:
            for day in days:
                _, end = day_bounds(day.day)
                ReconciliationItem(
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
                ).save()
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not keep the reconciliation.") from error

    def recent(self, days: Sequence[date]) -> list[StoredDay]:
        """The stored days among ``days`` (both providers), oldest first; days never reconciled are absent."""
        keys = [(f"recon#{day.isoformat()}", provider) for day in days for provider in PROVIDERS]
        try:
            found = list(ReconciliationItem.batch_get(keys))
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not be reached.") from error
        stored = [_stored(item) for item in found]
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
