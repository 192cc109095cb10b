"""The sweeper releases reservations of calls that died between reserve and settle — and only those."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from costbrake.dal.spend import ReservationInfo
from costbrake.local.faults import ConflictInjector
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


def test_given_counters_too_busy_for_every_settle_attempt_then_the_settle_waits_on_the_reservation_for_the_sweeper(
    stores, clock, call_record
):
    charges = reserve(stores, clock, "busy", "0.9")
    throttling = ConflictInjector(hold_seconds=0, throttle_every=1).install(stores.tables.client)

    stores.spend.settle("busy", charges, Decimal("0.3"), call_record(request_id="busy", cost_usd=Decimal("0.3")))
    throttling.uninstall()

    held = stores.spend.get_counters([HOUR])[HOUR]
    assert (held.committed, held.spent, stores.calls.get_call("busy")) == (Decimal("0.9"), 0, None)
    result = sweep(stores.reservations, clock)  # due at once: no wait for the reservation's expiry

    assert (result.settled_for_the_gateway, result.released) == (1, 0)
    settled = stores.spend.get_counters([HOUR])[HOUR]
    assert (settled.committed, settled.spent, settled.calls) == (Decimal("0.3"), Decimal("0.3"), 1)
    recorded = stores.calls.get_call("busy")
    assert recorded is not None and recorded.cost_usd == Decimal("0.3")
    assert stores.reservations.open_reservations() == []
    assert sweep(stores.reservations, clock).settled_for_the_gateway == 0


def test_given_one_reservation_the_ledger_refuses_when_swept_then_the_others_are_still_released(
    stores, clock, monkeypatch
):
    from costbrake.errors import LedgerUnavailable

    reserve(stores, clock, "refused", "0.2")
    reserve(stores, clock, "fine", "0.3")
    clock.advance(TTL + 1)
    release = stores.reservations.release

    def release_or_fail(reservation):
        if reservation.request_id == "refused":
            raise LedgerUnavailable("injected")
        return release(reservation)

    monkeypatch.setattr(stores.reservations, "release", release_or_fail)

    result = sweep(stores.reservations, clock)

    assert (result.released, result.failed) == (1, 1)
    assert [r.request_id for r in stores.reservations.open_reservations()] == ["refused"]
