"""The sweeper releases reservations of calls that died between reserve and settle — and only those."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from costbrake.dal.spend import ReservationInfo
from costbrake.pipeline.sweeper import sweep
from costbrake.records import Charge, CounterRef

HOUR = CounterRef("user#alice", "h#2026-11-24T10")
TTL = 120


def reserve(stores, clock, request_id: str, amount: str) -> list[Charge]:
    now = clock.now()
    charges = [Charge(HOUR, Decimal("1"), Decimal(amount), 2_000_000_000)]
    info = ReservationInfo(request_id, "alice", "chat", "gpt-4o", now, int(now.timestamp()) + TTL)
    stores.spend.reserve(info, charges, None, 0)
    return charges


def test_given_reservation_of_a_dead_call_when_expired_then_released_and_budget_usable_again(stores, clock):
    reserve(stores, clock, "dead", "0.9")
    clock.advance(TTL + 1)

    result = sweep(stores.reservations, clock)

    assert (result.released, result.released_usd) == (1, Decimal("0.9"))
    assert stores.spend.get_counters([HOUR])[HOUR].committed == 0
    assert stores.reservations.open_reservations() == []
    reserve(stores, clock, "next", "0.9")  # the budget is usable again


def test_given_reservation_not_yet_expired_when_swept_then_left_alone(stores, clock):
    reserve(stores, clock, "slow", "0.5")
    clock.advance(TTL - 1)

    assert sweep(stores.reservations, clock).released == 0
    assert stores.spend.get_counters([HOUR])[HOUR].committed == Decimal("0.5")


def test_given_call_settling_late_after_the_sweep_then_it_is_charged_in_full_once(stores, clock, call_record):
    charges = reserve(stores, clock, "late", "0.5")
    clock.advance(timedelta(seconds=TTL + 1).total_seconds())
    sweep(stores.reservations, clock)

    stores.spend.settle("late", charges, Decimal("0.2"), call_record(request_id="late", cost_usd=Decimal("0.2")))

    state = stores.spend.get_counters([HOUR])[HOUR]
    assert (state.committed, state.spent) == (Decimal("0.2"), Decimal("0.2"))
    assert sweep(stores.reservations, clock).released == 0
