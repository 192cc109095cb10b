"""Rollup items and "applied" markers in the ledger table, written so each call record counts exactly once.

A group of calls is applied in one transaction: a marker ``applied#<request_id>`` per call, put only if it does
not exist, plus one ADD per rollup key the group touches, and the settle of the shared counters (feature, key,
global shards) its calls' reservations charged (``dal.spend``). A call already applied (a redelivered or retried
stream record) fails its marker's condition; the markers are then read back and the group is retried without
the calls already counted, so a batch delivered twice, or split and retried, leaves the same rollups.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection

from costbrake.config import Settings
from costbrake.dal.models import DecimalAttribute, _LedgerMeta, _LedgerModel
from costbrake.dal.retry import RetryPolicy, failure
from costbrake.dal.tables import Tables, key, put_entry, unavailable, update_entry
from costbrake.errors import LedgerUnavailable
from costbrake.pipeline.rollups import CounterDelta, RollupKey, StreamCall, Totals, coalesce, counter_deltas

MAX_TRANSACTION_ITEMS = 100  # DynamoDB's TransactWriteItems limit
# Longer than a stream keeps its records (24 h): a redelivered record always still finds its marker.
MARKER_RETENTION_SECONDS = 2 * 86_400
MARKER_SK = "rollups"  # the consumer that applied the record; another consumer would use its own sort key


class RollupsByWindow(GlobalSecondaryIndex["RollupItem"]):
    """Every scope's totals in one window: the top users or features of an hour is one Query."""

    class Meta:
        index_name = "rollups-by-window"
        projection = IncludeProjection(["cost_usd", "calls"])

    window = UnicodeAttribute(hash_key=True)
    scope = UnicodeAttribute(range_key=True)


class RollupItem(_LedgerModel):
    """Totals of one scope in one window: pk ``rollup#<scope>``, sk the window key (``h#…`` / ``d#…``)."""

    class Meta(_LedgerMeta):
        pass

    # Scope and window again as plain attributes, so an index by window (top users of an hour) needs no rewrite.
    scope = UnicodeAttribute(null=True)
    window = UnicodeAttribute(null=True)
    cost_usd = DecimalAttribute(null=True)
    calls = NumberAttribute(null=True)
    input_tokens = NumberAttribute(null=True)
    output_tokens = NumberAttribute(null=True)
    cache_read_tokens = NumberAttribute(null=True)
    cache_hits = NumberAttribute(null=True)
    truncations = NumberAttribute(null=True)
    errors = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # TTL
    by_window = RollupsByWindow()


class AppliedMarker(_LedgerModel):
    """``applied#<request_id>`` / ``rollups``: this call record is counted in the rollups."""

    class Meta(_LedgerMeta):
        pass

    expires_at = NumberAttribute()  # TTL


def rollup_pk(scope: str) -> str:
    return f"rollup#{scope}"


def marker_pk(request_id: str) -> str:
    return f"applied#{request_id}"


@dataclass
class RollupWriteStats:
    transactions: int = 0  # TransactWriteItems requests, including cancelled ones
    conflicts: int = 0  # cancelled by another transaction or write on one of the items
    retries: int = 0
    duplicates: int = 0  # calls found already applied
    items_written: int = 0  # items of committed transactions (markers + rollup updates + counter settles)
    rollup_updates: int = 0
    counter_settles: int = 0  # shared counters (feature, key, global shards) settled


@dataclass(frozen=True)
class GroupOutcome:
    applied: int
    duplicates: int


UNREACHABLE = "The ledger table could not be reached."


class RollupStore:
    def __init__(self, tables: Tables, policy: RetryPolicy) -> None:
        self.tables = tables
        self.policy = policy
        self.stats = RollupWriteStats()

    @classmethod
    def of(cls, tables: Tables, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> RollupStore:
        return cls(tables, RetryPolicy.of(settings, sleep))

    @property
    def client(self) -> Any:
        """The botocore client (for instrumentation and fault injection in tests and the benchmark)."""
        return self.tables.client

    def apply(self, calls: Sequence[StreamCall], now: datetime) -> GroupOutcome:
        """Add the calls not applied yet to their rollups, in one transaction.

        The calls must have distinct request ids and fit one transaction (``plan_transactions``). Raises
        LedgerUnavailable when the table cannot be reached or stays contended after bounded retries; nothing of
        the group is applied then.
        """
        policy = self.policy
        pending = list(calls)
        duplicates = 0
        expires_at = int(now.timestamp()) + MARKER_RETENTION_SECONDS
        for attempt in range(policy.attempts):
            if not pending:
                break
            try:
                self._write(pending, expires_at)
                return GroupOutcome(applied=len(pending), duplicates=duplicates)
            except (BotoCoreError, ClientError) as error:
                code, reasons = failure(error)
                if "ConditionalCheckFailed" in reasons:
                    # Some calls were applied by an earlier delivery (or a concurrent one): drop them all.
                    applied = self._applied(call.request_id for call in pending)
                    remaining = [call for call in pending if call.request_id not in applied]
                    duplicates += len(pending) - len(remaining)
                    self.stats.duplicates += len(pending) - len(remaining)
                    pending = remaining
                    continue
                # No response at all (timeout, reset) is retried too: a write that did go through left its
                # markers, so the retry skips those calls.
                if not policy.retriable(code, reasons):
                    raise LedgerUnavailable(f"The rollup transaction was refused ({code}: {reasons}).") from error
                if "TransactionConflict" in reasons:
                    self.stats.conflicts += 1
                if attempt + 1 < policy.attempts:
                    self.stats.retries += 1
                    policy.backoff(attempt)
        if pending:
            raise LedgerUnavailable(f"The rollup transaction did not go through in {policy.attempts} tries.")
        return GroupOutcome(applied=0, duplicates=duplicates)

    def _write(self, calls: Sequence[StreamCall], marker_expires_at: int) -> None:
        deltas = coalesce(calls)
        self.stats.transactions += 1
        ledger = self.tables.ledger
        items = [
            put_entry(
                ledger,
                AppliedMarker(marker_pk(call.request_id), MARKER_SK, expires_at=marker_expires_at),
                AppliedMarker.pk.does_not_exist(),
            )
            for call in calls
        ]
        items += [
            update_entry(ledger, key(rollup_pk(k.scope), k.window), _add(k, delta)) for k, delta in deltas.items()
        ]
        counters = counter_deltas(calls)
        items += [_settle_counter(ledger, pk, sk, delta) for (pk, sk), delta in counters.items()]
        self.tables.transact(items)
        self.stats.items_written += len(calls) + len(deltas) + len(counters)
        self.stats.rollup_updates += len(deltas)
        self.stats.counter_settles += len(counters)

    def _applied(self, request_ids: Iterable[str]) -> set[str]:
        keys = [key(marker_pk(request_id), MARKER_SK) for request_id in request_ids]
        with unavailable(UNREACHABLE):
            # Consistent: a marker that just failed a condition must be visible.
            found = self.tables.batch_get(self.tables.ledger, keys, consistent=True)
        return {raw["pk"]["S"].removeprefix("applied#") for raw in found}

    def rollups_for(self, scope: str, window_keys: Iterable[str]) -> dict[str, Totals]:
        """The totals of ``scope`` per window key; windows without any call are absent."""
        keys = [key(rollup_pk(scope), window) for window in dict.fromkeys(window_keys)]
        with unavailable(UNREACHABLE):
            found = self.tables.batch_get(self.tables.ledger, keys)
        return {raw["sk"]["S"]: _totals(RollupItem.from_raw_data(raw)) for raw in found}

    def top_in_window(self, window_key: str, scope_prefix: str, limit: int = 5) -> list[tuple[str, Decimal]]:
        """The scopes starting with ``scope_prefix`` (e.g. ``user#``) that cost most in the window, by cost."""
        condition = (RollupItem.window == window_key) & RollupItem.scope.startswith(scope_prefix)
        index = RollupItem.by_window.Meta.index_name
        with unavailable(UNREACHABLE):
            items = list(self.tables.query(self.tables.ledger, RollupItem, condition, index=index))
        ranked = sorted(((item.scope, item.cost_usd or Decimal(0)) for item in items), key=lambda p: -p[1])
        return [(scope.removeprefix(scope_prefix), cost) for scope, cost in ranked[:limit]]


def _settle_counter(table: str, pk: str, sk: str, delta: CounterDelta) -> dict[str, Any]:
    """A shared counter (feature, key or global shard) moved from its calls' reservations to their cost."""
    update = {
        "TableName": table,
        "Key": key(pk, sk),
        "UpdateExpression": "ADD #c :d, #s :a, #n :n",
        "ExpressionAttributeNames": {"#c": "committed", "#s": "spent", "#n": "calls"},
        "ExpressionAttributeValues": {
            ":d": {"N": format(delta.committed, "f")},
            ":a": {"N": format(delta.spent, "f")},
            ":n": {"N": str(delta.calls)},
        },
    }
    return {"Update": update}


def _add(key: RollupKey, delta: Totals) -> list[Any]:
    r = RollupItem
    return [
        r.cost_usd.add(delta.cost_usd),
        r.calls.add(delta.calls),
        r.input_tokens.add(delta.input_tokens),
        r.output_tokens.add(delta.output_tokens),
        r.cache_read_tokens.add(delta.cache_read_tokens),
        r.cache_hits.add(delta.cache_hits),
        r.truncations.add(delta.truncations),
        r.errors.add(delta.errors),
        r.scope.set(key.scope),
        r.window.set(key.window),
        r.expires_at.set(key.expires_at),
    ]


def _totals(item: RollupItem) -> Totals:
    return Totals(
        cost_usd=item.cost_usd or Decimal(0),
        calls=int(item.calls or 0),
        input_tokens=int(item.input_tokens or 0),
        output_tokens=int(item.output_tokens or 0),
        cache_read_tokens=int(item.cache_read_tokens or 0),
        cache_hits=int(item.cache_hits or 0),
        truncations=int(item.truncations or 0),
        errors=int(item.errors or 0),
    )
