"""The gateway's hot path: key lookup, settings and counters, and the reserve/settle transactions.

Reserve is one transaction: the user's item (windows, request rate and the reservation's entry, see
``user_item``) and each shared counter (feature, key and global shards). Settle is one transaction too, of the
user's item and the call record; the record names the shared counters and what they are owed (``shared_delta``),
and the aggregator settles them from the calls table's stream, once per call (``dal.rollups``). That keeps a
call to 11 write units and hot shards out of every second transaction (docs/architecture.md).

The transactions are built as TransactItems dicts (no PynamoDB expression objects per call): the client's CPU
per call is a large part of the gateway's. The item order is part of the semantics: a cancellation names items
by index.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from costbrake.config import Settings
from costbrake.dal import models as m
from costbrake.dal.calls import call_item_raw
from costbrake.dal.legacy import carried_windows
from costbrake.dal.reads import UNREACHABLE, LedgerReader, api_key_of
from costbrake.dal.retry import LedgerContention, RetryPolicy, TransactionStats, Transactor, parameter_token
from costbrake.dal.tables import Tables, key, unavailable
from costbrake.dal.user_item import (
    NOTHING,
    Entry,
    Expression,
    Refused,
    UserSpend,
    WindowCharge,
    carry_windows,
    charge_windows,
    count_request,
    current_windows,
    expect_item,
    is_user_ref,
    open_entry,
    settle_entry,
    user_pk,
    window_start,
)
from costbrake.errors import LedgerUnavailable
from costbrake.records import ApiKey, CallRecord, Charge, CounterRef, CounterState, RateCharge

SWEEP_BUCKETS = 10
PARK = "park#"  # park#<request_id>: a settle left for the sweeper (SpendStore._park)


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
_RESERVE = {"#c": "committed", "#e": "expires_at"}
# A write to the user's item whose expectation of its windows was wrong is rebuilt from the item's old image;
# this many tries, then the user's item counts as contended (another call of theirs kept changing it).
WINDOW_ROUNDS = 4
USER_ITEM_GRACE_SECONDS = 2 * 86_400  # how long a user's item outlives its last reservation's release time


def sweep_bucket(name: str) -> str:
    """A user's (or a parked settle's) partition of the sweeper's index."""
    return f"b#{zlib.crc32(name.encode()) % SWEEP_BUCKETS}"


def _token(request_id: str, kind: str, number: int) -> str:
    # ClientRequestToken: at most 36 characters (request ids are 32).
    return f"{request_id}{kind}{number:x}"[:36]


def split_charges(charges: Sequence[Charge]) -> tuple[list[Charge], list[Charge], Decimal]:
    """The user's own charges, the shared ones, and the one amount a reservation puts on every counter."""
    own = [charge for charge in charges if is_user_ref(charge.counter)]
    shared = [charge for charge in charges if not is_user_ref(charge.counter)]
    amounts = {charge.amount for charge in charges}
    if len(amounts) > 1:
        raise ValueError(f"a reservation charges one amount on every counter, not {sorted(amounts)}")
    return own, shared, amounts.pop() if amounts else Decimal(0)


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
        own, shared, amount = split_charges(charges)
        shared_keys = tuple((charge.counter.pk, charge.counter.window) for charge in shared)
        by_window = {charge.counter.window: charge.counter for charge in own}
        if rate is not None:
            by_window[rate.counter.window] = rate.counter
        user_refs = list(by_window.values()) or [CounterRef(f"user#{info.user_id}", "w")]
        refs: list[list[CounterRef]] = [user_refs, *([charge.counter] for charge in shared)]
        shared_items = [_reserve_shared(self.tables.ledger, charge) for charge in shared]
        # The item (TTL) outlives its windows' retention and every reservation on it.
        expires_at = max([charge.expires_at for charge in own] + [info.release_after + USER_ITEM_GRACE_SECONDS])
        windows = [WindowCharge(charge.counter.window, charge.amount, charge.limit) for charge in own]
        entry = Entry(info.release_after, amount, tuple(w.window for w in windows), shared_keys)
        item: UserSpend | None = None  # the item as its last refusal showed it
        carried: dict[str, CounterState] | None = None  # a new item: what the old layout held
        for round_ in range(WINDOW_ROUNDS):
            expression = Expression()
            try:
                charge_windows(expression, item, windows, info.created_at, carried)
                if rate is not None:
                    before = None if carried is None else carried.get(rate.counter.window, NOTHING).calls
                    count_request(expression, item, rate.counter.window, rate.limit, info.created_at, before)
            except Refused as refused:
                raise ChargesRefused([by_window[window] for window in refused.windows]) from None
            if carried is not None:
                carry_windows(expression, carried, skip=by_window, at=info.created_at)
            expect_item(expression, new=carried is not None)
            expression.set("expires_at", expires_at)
            open_entry(expression, info.request_id, entry, sweep_bucket(info.user_id))
            items = [{"Update": expression.request(self.tables.ledger, user_pk(info.user_id))}, *shared_items]
            try:
                failed = self._transactor.run_detailed(items, token=_token(info.request_id, "r", attempt * 8 + round_))
            except LedgerContention as busy:
                contended = [ref for index in sorted(busy.contended) for ref in refs[index]]
                raise ReservationContended(busy.message, contended) from busy
            if not failed:
                return
            refused_shared = [ref for index in sorted(failed) if index > 0 for ref in refs[index]]
            if 0 not in failed:
                raise ChargesRefused(refused_shared)
            image = failed[0]
            if image is None:  # no item yet: start it from the old layout's counters, if any
                windows_before = dict.fromkeys([*by_window, *current_windows(info.created_at)])
                item, carried = None, carried_windows(self.tables, user_pk(info.user_id), list(windows_before))
                continue
            item, carried = UserSpend.of(image), None
            if info.request_id in item.entries:
                return  # an earlier attempt whose answer was lost went through
            if refused_shared:
                raise ChargesRefused(refused_shared)
        raise ReservationContended(f"the user's item kept changing under {WINDOW_ROUNDS} tries", user_refs)

    def count_request(self, request_id: str, rate: RateCharge) -> bool:
        """Count one request of ``rate`` alone (a call the provider does not bill); False when the limit is
        reached. The client request token makes a retried attempt count once."""
        return self._count_with(request_id, rate, None, "q")

    def record_free_call(self, record: CallRecord, rate: RateCharge | None) -> bool:
        """Write the record of a call nobody is charged for (a response-cache hit: nothing reserved, nothing
        spent) and count it as one request of ``rate``, in one transaction; False when the rate limit is
        reached (nothing written). The client request token makes a retried attempt count once."""
        return self._count_with(record.request_id, rate, call_item_raw(record), "f")

    def _count_with(self, request_id: str, rate: RateCharge | None, call: dict[str, Any] | None, kind: str) -> bool:
        item: UserSpend | None = None
        carried: dict[str, CounterState] | None = None  # a new item: what the old layout held
        for round_ in range(WINDOW_ROUNDS):
            items = [] if call is None else [_put_call(self.tables, call)]  # the record first: see below
            if rate is not None:
                expression = Expression()
                minute = rate.counter.window
                before = None if carried is None else carried.get(minute, NOTHING).calls
                try:
                    count_request(expression, item, minute, rate.limit, window_start(minute), before)
                except Refused:
                    return False
                if carried is not None:
                    carry_windows(expression, carried, skip=[minute], at=window_start(minute))
                expect_item(expression, new=carried is not None)
                expression.set_if_absent("expires_at", rate.expires_at)
                items.append({"Update": expression.request(self.tables.ledger, rate.counter.pk)})
            if not items:
                return True
            failed = self._transactor.run_detailed(items, token=_token(request_id, kind, round_))
            if not failed or (call is not None and 0 in failed):
                return True  # applied, or the record exists: an earlier attempt went through
            assert rate is not None  # only the count can be refused when the record is not
            image = failed[len(items) - 1]
            if image is None:  # no item yet: start it from the old layout's counters, if any
                windows = [rate.counter.window, *current_windows(window_start(rate.counter.window))]
                item, carried = None, carried_windows(self.tables, rate.counter.pk, windows)
            else:
                item, carried = UserSpend.of(image), None
        raise LedgerUnavailable(f"the request count of {request_id} kept changing under {WINDOW_ROUNDS} tries")

    def settle(self, request_id: str, charges: Sequence[Charge], actual: Decimal, record: CallRecord) -> None:
        """Turn the reservation into the actual cost and write the call record, in one transaction.

        ``actual`` of zero is a refund (provider error). If the sweeper already released the reservation,
        the full actual cost is charged instead; if the record exists, the call was settled already. If the
        user's item stays too busy for every attempt, the settle is parked on it for the sweeper.
        """
        own, shared, reserved = split_charges(charges)
        pending = PendingSettle(
            user_pk(record.user_id),
            request_id,
            tuple(charge.counter.window for charge in own),
            tuple((charge.counter.pk, charge.counter.window) for charge in shared),
            reserved,
            actual,
            call_item_raw(record),
        )
        try:
            settle_pending(self.tables, self._transactor, pending, None, "s", self._settle_attempts)
        except LedgerContention:
            self._park(pending)

    def _park(self, pending: PendingSettle) -> None:
        """Keep a settle the busy user's item refused as an item of its own (``park#<request_id>``, which only this
        call writes, so nothing contends for it), due at once: the sweeper's next run settles it
        (``ReservationStore.settle_parked``). Until then the counters hold the reservation, never less than the
        actual cost."""
        item = {
            "pk": {"S": f"{PARK}{pending.request_id}"},
            "sk": {"S": "park"},
            "sweep_bucket": {"S": sweep_bucket(pending.request_id)},
            "release_after": {"N": "0"},
            "settle": {"S": pending.dumps()},
        }
        put = {"TableName": self.tables.ledger, "Item": item, "ConditionExpression": _ABSENT}
        with unavailable(f"The settle of {pending.request_id} could not be kept for the sweeper."):
            self.tables.client.put_item(**put, ExpressionAttributeNames={"#k": "pk"})


@dataclass(frozen=True)
class PendingSettle:
    """What a settle writes: the user's item moved from ``reserved`` to ``actual`` and the call record."""

    user_pk: str
    request_id: str
    windows: tuple[str, ...]
    shared: tuple[tuple[str, str], ...]
    reserved: Decimal
    actual: Decimal
    call: dict[str, Any]

    def dumps(self) -> str:
        fields = [self.user_pk, self.request_id, self.windows, self.shared]
        return json.dumps([*fields, format(self.reserved, "f"), format(self.actual, "f"), self.call])

    @classmethod
    def loads(cls, text: str) -> PendingSettle:
        user, request_id, windows, shared, reserved, actual, call = json.loads(text)
        pairs = tuple((pk, sk) for pk, sk in shared)
        return cls(user, request_id, tuple(windows), pairs, Decimal(reserved), Decimal(actual), call)


def settle_pending(
    tables: Tables,
    transactor: Transactor,
    pending: PendingSettle,
    item: UserSpend | None,
    kind: str,
    attempts: int,
    also: Sequence[dict[str, Any]] = (),
) -> bool:
    """The settle transaction (with the items ``also``), rebuilt from the user's item when it was not as expected;
    False when the call was settled already (its record exists). Raises LedgerContention when the item stays
    busy."""
    for round_ in range(WINDOW_ROUNDS):
        entry = item.entries.get(pending.request_id) if item is not None else None
        if entry is not None:  # what the reservation really charged
            pending = replace(pending, windows=entry.windows, shared=entry.shared, reserved=entry.amount)
        expression = Expression()
        request_id, actual = pending.request_id, pending.actual
        entry_open = settle_entry(expression, item, request_id, pending.windows, pending.reserved, actual)
        call = pending.call
        if pending.shared:
            # The aggregator settles these from the record: the difference, or all of it once released.
            owed = pending.actual - pending.reserved if entry_open else pending.actual
            call = call | {"shared_counters": {"S": json.dumps(pending.shared)}, "shared_delta": _n(owed)}
        items = [expression.transact_item(tables.ledger, pending.user_pk), _put_call(tables, call), *also]
        # The gateway's tokens count its tries; the sweeper's (runs minutes apart) follow from the items.
        token = parameter_token(pending.request_id, kind, items) if also else _token(pending.request_id, kind, round_)
        failed = transactor.run_detailed(items, token=token, attempts=attempts)
        if not failed:
            return True
        if 1 in failed:  # the call record exists: an earlier attempt of this settle went through
            return False
        item = UserSpend.of(failed[0])
    raise LedgerUnavailable(f"settle of {pending.request_id}: the user's item kept changing")


def _reserve_shared(table: str, charge: Charge) -> dict[str, Any]:
    update = {
        "TableName": table,
        "Key": key(charge.counter.pk, charge.counter.window),
        "UpdateExpression": "SET #e = :e ADD #c :a",
        "ConditionExpression": "attribute_not_exists(#c) OR #c <= :l",
        "ExpressionAttributeNames": _RESERVE,
        "ExpressionAttributeValues": {
            ":a": _n(charge.amount),
            ":e": _n(charge.expires_at),
            ":l": _n(charge.limit - charge.amount),
        },
    }
    return {"Update": update}


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
