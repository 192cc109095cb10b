"""The sweeper: releases reservations of calls whose Lambda died between reserve and settle."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from aws_lambda_powertools import Logger

from costbrake.clock import Clock
from costbrake.dal.reservations import ReservationStore
from costbrake.errors import LedgerUnavailable

logger = Logger(child=True)


@dataclass(frozen=True)
class SweepResult:
    released: int
    released_usd: Decimal
    settled_meanwhile: int
    settled_for_the_gateway: int = 0
    failed: int = 0  # left for the next run: the ledger refused or stayed busy (logged)


def sweep(reservations: ReservationStore, clock: Clock) -> SweepResult:
    """Release every reservation past its expiry (one settled in the meantime is left alone), and carry out the
    settles the gateway left on their reservations when the counters stayed too busy."""
    released, amount, settled, parked, failed = 0, Decimal(0), 0, 0, 0
    now = int(clock.now().timestamp())
    for reservation in reservations.expired_reservations(now):
        try:
            if reservation.parked is not None:
                parked += reservations.settle_parked(reservation)
                continue
            done = reservations.release(reservation)
        except LedgerUnavailable:
            # One item the ledger refuses (or keeps busy) must not stop the others; the next run tries again.
            logger.exception("sweep of a reservation failed", extra={"request_id": reservation.request_id})
            failed += 1
            continue
        if done:
            released += 1
            reserved = max((charge[2] for charge in reservation.charges), default=Decimal(0))
            amount += reserved
            # The provider may still have billed this call: the amount is released, not known to be unspent.
            logger.warning(
                "reservation released",
                extra={"request_id": reservation.request_id, "reserved_usd": str(reserved)},
            )
        else:
            settled += 1
    try:
        reservations.reschedule(now)
    except LedgerUnavailable:
        logger.exception("rescheduling the sweep failed; the next run tries again")
    return SweepResult(released, amount, settled, parked, failed)
