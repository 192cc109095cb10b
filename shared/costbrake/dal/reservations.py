"""Open reservations for the sweeper (and inspection): the expired ones, and giving their amounts back.

Reservations live on their user's item (``user_item``); the sparse ``reservations-by-expiry`` index lists the
user items with one that may have expired (``release_after``), by bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from botocore.exceptions import ClientError

from costbrake.config import Settings
from costbrake.dal.legacy import (
    LEGACY_RESERVATION,
    close_legacy,
    is_legacy,
    legacy_charges,
    legacy_created_at,
    legacy_parked,
)
from costbrake.dal.models import RESERVATIONS_BY_EXPIRY
from costbrake.dal.retry import RetryPolicy, Transactor, parameter_token
from costbrake.dal.spend import PARK, SWEEP_BUCKETS, PendingSettle, settle_pending
from costbrake.dal.tables import Tables, condition_failed, key, unavailable
from costbrake.dal.user_item import USER_SK, Expression, UserSpend, past_attributes, release_entry
from costbrake.errors import LedgerUnavailable

UNREACHABLE = "The ledger could not be reached."
_ROUNDS = 3


@dataclass(frozen=True)
class OpenReservation:
    request_id: str
    release_after: int
    charges: list[tuple[str, str, Decimal]]  # (pk, sk, amount): the user's windows, then the shared counters
    parked: tuple[Decimal, dict[str, Any]] | None = None  # a settle left for the sweeper: actual cost, call item
    user_pk: str = ""
    item: UserSpend | None = field(default=None, compare=False, repr=False)  # the user's item as read
    legacy: bool = False  # an ``res#`` item of the layout before (``dal.legacy``)
    created_at: int = 0  # epoch seconds (old reservations: ``dal.legacy``)
    pending: PendingSettle | None = field(default=None, compare=False, repr=False)  # a parked settle


class ReservationStore:
    def __init__(self, tables: Tables, policy: RetryPolicy) -> None:
        self.tables = tables
        self._transactor = Transactor(tables, policy)

    @classmethod
    def of(cls, tables: Tables, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> ReservationStore:
        return cls(tables, RetryPolicy.of(settings, sleep))

    def open_reservations(self) -> list[OpenReservation]:
        args = {
            "TableName": self.tables.ledger,
            "FilterExpression": "(sk = :w AND begins_with(pk, :user)) OR begins_with(pk, :old)",
            "ExpressionAttributeValues": {
                ":w": {"S": USER_SK},
                ":user": {"S": "ctr#user#"},
                ":old": {"S": LEGACY_RESERVATION},
            },
        }
        with unavailable(UNREACHABLE):
            raws = list(self._pages("scan", args))
        return [reservation for raw in raws for reservation in _reservations(raw, None)]

    def expired_reservations(self, now_epoch: int, limit: int = 500) -> list[OpenReservation]:
        """Reservations whose release time has passed (their Lambda can no longer be running), and settles the
        gateway parked."""
        found = [r for raw in self._due_items(now_epoch, limit) for r in _reservations(raw, now_epoch)]
        return found[:limit]

    def reschedule(self, now_epoch: int, limit: int = 500) -> int:
        """Point each due user item's ``release_after`` at its earliest open reservation, or take it out of the
        index when none is left, and drop its past windows' attributes; the number of items changed. A
        reservation added meanwhile (``rv`` moved) keeps the item as it is, for the next run."""
        now = datetime.fromtimestamp(now_epoch, UTC)
        changed = 0
        for raw in self._due_items(now_epoch, limit):
            if not raw["pk"]["S"].startswith("ctr#"):
                continue  # an old reservation or a parked settle: it leaves the index when done
            item = UserSpend.of(raw)
            if any(entry.release_after <= now_epoch for entry in item.entries.values()):
                continue  # still due: a release failed this run
            expression = Expression()
            if item.entries:
                expression.set("release_after", min(entry.release_after for entry in item.entries.values()))
            else:
                expression.remove("release_after")
            for past in past_attributes(item, now):
                expression.remove(past)
            version = expression.name("rv")
            expression.require(f"({version} = {expression.value(item.version)} OR attribute_not_exists({version}))")
            try:
                self.tables.client.update_item(**expression.request(self.tables.ledger, raw["pk"]["S"], False))
                changed += 1
            except ClientError as error:
                if not condition_failed(error):
                    raise LedgerUnavailable(UNREACHABLE) from error
        return changed

    def release(self, reservation: OpenReservation) -> bool:
        """Give an expired reservation's amounts back to its counters and close it, atomically.

        False when the call settled in the meantime (the reservation is gone): nothing is changed then.
        """
        if reservation.legacy:
            charges, created_at = reservation.charges, reservation.created_at
            return close_legacy(self.tables, self._transactor, reservation.request_id, charges, None, created_at)
        item = reservation.item
        for _ in range(_ROUNDS):
            if item is None or reservation.request_id not in item.entries:
                return False
            entry = item.entries[reservation.request_id]
            expression = Expression()
            release_entry(expression, item, reservation.request_id)
            shared = [
                {
                    "Update": {
                        "TableName": self.tables.ledger,
                        "Key": key(pk, sk),
                        "UpdateExpression": "ADD #c :a",
                        "ExpressionAttributeNames": {"#c": "committed"},
                        "ExpressionAttributeValues": {":a": {"N": format(-entry.amount, "f")}},
                    }
                }
                for pk, sk in entry.shared
            ]
            items = [expression.transact_item(self.tables.ledger, reservation.user_pk), *shared]
            failed = self._transactor.run_detailed(items, token=parameter_token(reservation.request_id, "x", items))
            if not failed:
                return True
            item = UserSpend.of(failed.get(0))
        return False

    def settle_parked(self, reservation: OpenReservation) -> bool:
        """Carry out a settle the gateway left for the sweeper (the user's item stayed too busy): the actual cost
        charged, the call recorded, the reservation closed, the parked settle deleted, in one transaction. False
        if it was done already."""
        assert reservation.parked is not None
        if reservation.legacy:
            charges, parked, created_at = reservation.charges, reservation.parked, reservation.created_at
            return close_legacy(self.tables, self._transactor, reservation.request_id, charges, parked, created_at)
        assert reservation.pending is not None
        park = key(f"{PARK}{reservation.request_id}", "park")
        delete = {"Delete": {"TableName": self.tables.ledger, "Key": park}}
        attempts = self._transactor.policy.attempts
        done = settle_pending(self.tables, self._transactor, reservation.pending, None, "p", attempts, [delete])
        if not done:  # settled before (its record exists): the parked copy goes
            with unavailable(UNREACHABLE):
                self.tables.client.delete_item(TableName=self.tables.ledger, Key=park)
        return done

    def _due_items(self, now_epoch: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` due items, the earliest of each bucket first and an equal share per bucket, so no
        bucket waits behind another's backlog."""
        keys: list[dict[str, Any]] = []
        share = max(1, limit // SWEEP_BUCKETS)
        with unavailable(UNREACHABLE):
            for bucket in range(SWEEP_BUCKETS):
                args = {
                    "TableName": self.tables.ledger,
                    "IndexName": RESERVATIONS_BY_EXPIRY,
                    "KeyConditionExpression": "sweep_bucket = :b AND release_after <= :now",
                    "ExpressionAttributeValues": {":b": {"S": f"b#{bucket}"}, ":now": {"N": str(now_epoch)}},
                    "Limit": share,
                }
                keys.extend({"pk": raw["pk"], "sk": raw["sk"]} for raw in islice(self._pages("query", args), share))
            # Consistent: the sweeper acts on what it reads.
            return self.tables.batch_get(self.tables.ledger, keys, consistent=True)

    def _pages(self, operation: str, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
        send = getattr(self.tables.client, operation)
        while True:
            page = send(**args)
            yield from page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                return
            args = args | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _reservations(raw: dict[str, Any], due_by: int | None) -> list[OpenReservation]:
    """The reservations on a user's item (only those due by ``due_by``, when given), or a parked settle, or an
    old reservation."""
    if raw["pk"]["S"].startswith(PARK):
        pending = PendingSettle.loads(raw["settle"]["S"])
        charges = [(pending.user_pk, window, pending.reserved) for window in pending.windows]
        charges += [(pk, sk, pending.reserved) for pk, sk in pending.shared]
        parked = (pending.actual, pending.call)
        return [OpenReservation(pending.request_id, 0, charges, parked, pending.user_pk, pending=pending)]
    if is_legacy(raw):
        request_id = raw["pk"]["S"].removeprefix(LEGACY_RESERVATION)
        release_after = int(raw["release_after"]["N"])
        charges, parked, created_at = legacy_charges(raw), legacy_parked(raw), legacy_created_at(raw)
        return [OpenReservation(request_id, release_after, charges, parked, legacy=True, created_at=created_at)]
    item = UserSpend.of(raw)
    pk = raw["pk"]["S"]
    found = []
    for request_id, entry in item.entries.items():
        if due_by is not None and entry.release_after > due_by:
            continue
        charges = [(pk, window, entry.amount) for window in entry.windows]
        charges += [(shared_pk, sk, entry.amount) for shared_pk, sk in entry.shared]
        found.append(OpenReservation(request_id, entry.release_after, charges, None, pk, item))
    return found
