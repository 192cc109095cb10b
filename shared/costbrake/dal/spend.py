"""The gateway's hot path: key lookup, settings and counters, and the reserve/settle transactions.

The transactions are built as TransactItems dicts with fixed expressions (no PynamoDB expression objects per
call): the client's CPU per call is a large part of the gateway's (issue 9). The item order is part of the
semantics: a cancellation names items by index.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from costbrake.config import Settings
from costbrake.dal import models as m
from costbrake.dal.calls import call_item_raw
from costbrake.dal.reads import UNREACHABLE, LedgerReader, api_key_of
from costbrake.dal.retry import LedgerContention, RetryPolicy, TransactionStats, Transactor
from costbrake.dal.tables import Tables, key, unavailable
from costbrake.errors import LedgerUnavailable
from costbrake.records import ApiKey, CallRecord, Charge, CounterRef, RateCharge

SWEEP_BUCKETS = 10


class ReservationContended(LedgerUnavailable):
    def __init__(self, message: str, contended: Sequence[CounterRef]) -> None:
        super().__init__(message)
        self.contended = list(contended)


class ChargesRefused(Exception):
    """The reserve transaction was cancelled because these counters would pass their limits."""

    def __init__(self, refused: Sequence[CounterRef]) -> None:
        super().__init__(", ".join(f"{ref.pk}/{ref.window}" for ref in refused))
        self.refused = list(refused)


@dataclass(frozen=True)
class ReservationInfo:
    request_id: str
    user_id: str
    feature: str
    model: str
    created_at: datetime
    release_after: int  # epoch seconds


def _n(value: Decimal | int) -> dict[str, str]:
    return {"N": format(value, "f") if isinstance(value, Decimal) else str(value)}


_ABSENT = "attribute_not_exists(#k)"
_PRESENT = "attribute_exists(#k)"
_RESERVE = {"#c": "committed", "#e": "expires_at"}
_REQUESTS = {"#r": "requests", "#e": "expires_at"}
_SETTLE = {"#c": "committed", "#s": "spent", "#n": "calls"}


class SpendStore(LedgerReader):
    def __init__(self, tables: Tables, policy: RetryPolicy, settle_attempts: int) -> None:
        super().__init__(tables)
        self._transactor = Transactor(tables, policy)
        self._settle_attempts = settle_attempts

    @classmethod
    def of(cls, tables: Tables, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> SpendStore:
        attempts = settings.transaction_attempts * settings.settle_attempt_factor
        return cls(tables, RetryPolicy.of(settings, sleep), attempts)

    @property
    def stats(self) -> TransactionStats:
        return self._transactor.stats

    def get_key(self, key_hash: str) -> ApiKey | None:
        with unavailable(UNREACHABLE):
            item = self.tables.get(self.tables.ledger, m.KeyItem, key(f"key#{key_hash}", "key"))
        return api_key_of(item) if item else None

    def reserve(self, info: ReservationInfo, charges: Sequence[Charge], rate: RateCharge | None, attempt: int) -> None:
        """Reserve every charge (and one request of ``rate``) atomically, or raise ChargesRefused.

        ``attempt`` distinguishes differently-sharded tries of the same request, so each gets its own
        client request token (a token reused with other parameters is an error in DynamoDB).
        """
        table = self.tables.ledger
        reservation = {
            "pk": {"S": f"res#{info.request_id}"},
            "sk": {"S": "res"},
            "charges": {"S": json.dumps([[c.counter.pk, c.counter.window, format(c.amount, "f")] for c in charges])},
            "release_after": _n(info.release_after),
            "sweep_bucket": {"S": f"b#{zlib.crc32(info.request_id.encode()) % SWEEP_BUCKETS}"},
            "user_id": {"S": info.user_id},
            "feature": {"S": info.feature},
            "model": {"S": info.model},
            "created_at": {"S": info.created_at.isoformat()},
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": table,
                    "Item": reservation,
                    "ConditionExpression": _ABSENT,
                    "ExpressionAttributeNames": {"#k": "pk"},
                }
            }
        ]
        refs: list[CounterRef | None] = [None]
        for charge in charges:
            ref = charge.counter
            update = {
                "TableName": table,
                "Key": key(ref.pk, ref.window),
                "UpdateExpression": "SET #e = :e ADD #c :a",
                "ConditionExpression": "attribute_not_exists(#c) OR #c <= :l",
                "ExpressionAttributeNames": _RESERVE,
                "ExpressionAttributeValues": {
                    ":a": _n(charge.amount),
                    ":e": _n(charge.expires_at),
                    ":l": _n(charge.limit - charge.amount),
                },
            }
            items.append({"Update": update})
            refs.append(ref)
        if rate is not None:
            items.append(_count_request(table, rate))
            refs.append(rate.counter)
        try:
            failed = self._transactor.run(items, token=f"{info.request_id}r{attempt}")
        except LedgerContention as busy:
            contended = [ref for index, ref in enumerate(refs) if index in busy.contended and ref is not None]
            raise ReservationContended(busy.message, contended) from busy
        if 0 in failed:
            # The reservation is there already: an earlier attempt whose answer was lost went through.
            return
        if failed:
            raise ChargesRefused([ref for index, ref in enumerate(refs) if index in failed and ref is not None])

    def count_request(self, request_id: str, rate: RateCharge) -> bool:
        """Count one request of ``rate`` alone (a call the provider does not bill); False when the limit is
        reached. The client request token makes a retried attempt count once."""
        return not self._transactor.run([_count_request(self.tables.ledger, rate)], token=f"{request_id}q")

    def record_free_call(self, record: CallRecord, rate: RateCharge | None) -> bool:
        """Write the record of a call nobody is charged for (a response-cache hit: nothing reserved, nothing
        spent) and count it as one request of ``rate``, in one transaction; False when the rate limit is
        reached (nothing written). The client request token makes a retried attempt count once."""
        items = [_put_call(self.tables, call_item_raw(record))]  # the record is item 0: see below
        if rate is not None:
            items.append(_count_request(self.tables.ledger, rate))
        refused = self._transactor.run(items, token=f"{record.request_id}f")
        return not refused or refused == {0}  # only the record exists: an earlier attempt went through

    def settle(self, request_id: str, charges: Sequence[Charge], actual: Decimal, record: CallRecord) -> None:
        """Turn the reservation into the actual cost and write the call record, in one transaction.

        ``actual`` of zero is a refund (provider error). If the sweeper already released the reservation,
        the full actual cost is charged instead; if the record exists, the call was settled already. If the
        counters stay too busy for every attempt, the settle is parked on the reservation for the sweeper.
        """
        charged = [(charge.counter.pk, charge.counter.window, charge.amount) for charge in charges]
        call = call_item_raw(record)
        attempts = self._settle_attempts
        try:
            failed = self._transactor.run(
                settle_items(self.tables, request_id, charged, actual, call, reservation_open=True),
                token=f"{request_id}s",
                attempts=attempts,
            )
        except LedgerContention:
            self._park(request_id, actual, call)
            return
        if not failed or 1 in failed:  # 1: the call record exists, an earlier attempt of this settle went through
            return
        # The reservation is gone (released by the sweeper): charge the actual cost in full.
        late_failed = self._transactor.run(
            settle_items(self.tables, request_id, charged, actual, call, reservation_open=False),
            token=f"{request_id}l",
            attempts=attempts,
        )
        if late_failed and 0 not in late_failed:
            raise LedgerUnavailable(f"settle of {request_id} was refused: {sorted(late_failed)}")

    def _park(self, request_id: str, actual: Decimal, call: dict[str, Any]) -> None:
        """Keep a settle the busy counters refused on its reservation (one item, which only this call writes),
        due at once: the sweeper's next run settles it (``ReservationStore.settle_parked``). Until then the
        counters hold the reservation, never less than the actual cost."""
        update = {
            "TableName": self.tables.ledger,
            "Key": key(f"res#{request_id}", "res"),
            "UpdateExpression": "SET #a = :a, #r = :r, #t = :now",
            "ConditionExpression": _PRESENT,
            "ExpressionAttributeNames": {"#a": "settle_usd", "#r": "settle_record", "#t": "release_after", "#k": "pk"},
            "ExpressionAttributeValues": {":a": _n(actual), ":r": {"S": json.dumps(call)}, ":now": {"N": "0"}},
        }
        with unavailable(f"The settle of {request_id} could not be kept for the sweeper."):
            self.tables.client.update_item(**update)


def settle_items(
    tables: Tables,
    request_id: str,
    charges: Sequence[tuple[str, str, Decimal]],
    actual: Decimal,
    call: dict[str, Any],
    *,
    reservation_open: bool,
) -> list[dict[str, Any]]:
    """The settle transaction: the reservation deleted (if still open), the call record put, and per charged
    counter (pk, window, reserved amount) ``committed`` moved to the actual cost. The record is the item after
    the reservation: a cancellation of index 1 means the call was settled already."""
    table, spent = tables.ledger, _n(actual)
    built: list[dict[str, Any]] = []
    if reservation_open:
        delete = {"TableName": table, "Key": key(f"res#{request_id}", "res"), "ConditionExpression": _PRESENT}
        built.append({"Delete": delete | {"ExpressionAttributeNames": {"#k": "pk"}}})
    built.append(_put_call(tables, call))
    for pk, window, amount in charges:
        delta = actual - amount if reservation_open else actual
        update = {
            "TableName": table,
            "Key": key(pk, window),
            "UpdateExpression": "ADD #c :d, #s :a, #n :one",
            "ExpressionAttributeNames": _SETTLE,
            "ExpressionAttributeValues": {":d": _n(delta), ":a": spent, ":one": {"N": "1"}},
        }
        built.append({"Update": update})
    return built


def _put_call(tables: Tables, call: dict[str, Any]) -> dict[str, Any]:
    names = {"#k": "request_id"}
    return {
        "Put": {
            "TableName": tables.calls,
            "Item": call,
            "ConditionExpression": _ABSENT,
            "ExpressionAttributeNames": names,
        }
    }


def _count_request(table: str, rate: RateCharge) -> dict[str, Any]:
    # A limit of 0 refuses even the minute's first request (whose counter does not exist yet).
    condition = "#r < :l" if rate.limit < 1 else "attribute_not_exists(#r) OR #r < :l"
    update = {
        "TableName": table,
        "Key": key(rate.counter.pk, rate.counter.window),
        "UpdateExpression": "SET #e = :e ADD #r :one",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": _REQUESTS,
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":e": _n(rate.expires_at), ":l": _n(rate.limit)},
    }
    return {"Update": update}
