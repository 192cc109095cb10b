"""Open reservations for the sweeper (and inspection): the expired ones, and giving their amounts back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costbrake.config import Settings
from costbrake.dal import models as m
from costbrake.dal.reads import LedgerReader
from costbrake.dal.retry import RetryPolicy, Transactor
from costbrake.dal.spend import SWEEP_BUCKETS, settle_items
from costbrake.dal.tables import Tables, delete_entry, key, unavailable, update_entry

UNREACHABLE = "The ledger could not be reached."


@dataclass(frozen=True)
class OpenReservation:
    request_id: str
    release_after: int
    charges: list[tuple[str, str, Decimal]]  # (pk, sk, amount)
    parked: tuple[Decimal, dict[str, Any]] | None = None  # a settle left for the sweeper: actual cost, call item


class ReservationStore:
    def __init__(self, tables: Tables, policy: RetryPolicy) -> None:
        self.tables = tables
        self._reader = LedgerReader(tables)
        self._transactor = Transactor(tables, policy)

    @classmethod
    def of(cls, tables: Tables, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> ReservationStore:
        return cls(tables, RetryPolicy.of(settings, sleep))

    def open_reservations(self) -> list[OpenReservation]:
        condition = m.ReservationItem.pk.startswith("res#")
        with unavailable(UNREACHABLE):
            return [_open(item) for item in self.tables.scan(self.tables.ledger, m.ReservationItem, condition)]

    def expired_reservations(self, now_epoch: int, limit: int = 500) -> list[OpenReservation]:
        """Reservations whose release time has passed (their Lambda can no longer be running)."""
        index = m.ReservationItem.by_expiry.Meta.index_name
        keys: list[tuple[str, str]] = []
        with unavailable(UNREACHABLE):
            for bucket in range(SWEEP_BUCKETS):
                condition = (m.ReservationItem.sweep_bucket == f"b#{bucket}") & (
                    m.ReservationItem.release_after <= now_epoch
                )
                query = self.tables.query(self.tables.ledger, m.ReservationItem, condition, index=index, limit=limit)
                keys.extend((item.pk, item.sk) for item in query)
        found = self._reader.batch_get(keys[:limit])
        return [_open(item) for item in found.values() if isinstance(item, m.ReservationItem)]

    def release(self, reservation: OpenReservation) -> bool:
        """Give an expired reservation's amounts back to its counters and delete it, atomically.

        False when the call settled in the meantime (the reservation is gone): nothing is changed then.
        """
        table = self.tables.ledger
        items = [
            delete_entry(table, key(f"res#{reservation.request_id}", "res"), m.ReservationItem.pk.exists()),
            *(
                update_entry(table, key(pk, sk), [m.CounterItem.committed.add(-amount)])
                for pk, sk, amount in reservation.charges
            ),
        ]
        return not self._transactor.run(items, token=f"{reservation.request_id}x")

    def settle_parked(self, reservation: OpenReservation) -> bool:
        """Carry out a settle the gateway left on the reservation (its counters were too busy): the actual cost
        charged, the call recorded, the reservation gone, in one transaction. False if it was done already."""
        assert reservation.parked is not None
        actual, call = reservation.parked
        items = settle_items(
            self.tables, reservation.request_id, reservation.charges, actual, call, reservation_open=True
        )
        return not self._transactor.run(items, token=f"{reservation.request_id}p")


def _open(item: m.ReservationItem) -> OpenReservation:
    parked = (item.settle_usd, json.loads(item.settle_record)) if item.settle_record is not None else None
    return OpenReservation(
        request_id=item.pk.removeprefix("res#"),
        release_after=int(item.release_after),
        charges=[(pk, sk, Decimal(amount)) for pk, sk, amount in json.loads(item.charges)],
        parked=parked,
    )
