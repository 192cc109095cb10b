"""An upgrade from the per-window ledger layout: no spend forgotten, no old reservation stranded."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from costbrake.dal.calls import call_item_raw
from costbrake.dal.spend import ChargesRefused, ReservationInfo
from costbrake.pipeline.sweeper import sweep
from costbrake.records import Charge, CounterRef, RateCharge
from costbrake.wiring import Stores

HOUR = CounterRef("user#alice", "h#2026-11-24T10")
MINUTE = CounterRef("user#alice", "rpm#2026-11-24T10:30")
GLOBAL = CounterRef("global", "m#2026-11", shard=0)
FAR = 2_000_000_000


def put(stores: Stores, item: dict[str, object]) -> None:
    wire = {
        name: ({"N": str(value)} if isinstance(value, Decimal | int) else {"S": value}) for name, value in item.items()
    }
    stores.tables.client.put_item(TableName=stores.tables.ledger, Item=wire)


def old_reservation(stores: Stores, request_id: str, release_after: int, **parked: object) -> None:
    charges = [[GLOBAL.pk, GLOBAL.window, "0.4"], [HOUR.pk, HOUR.window, "0.4"]]
    put(
        stores,
        {
            "pk": f"res#{request_id}",
            "sk": "res",
            "charges": json.dumps(charges),
            "release_after": release_after,
            "sweep_bucket": "b#1",
            "user_id": "alice",
            "feature": "chat",
            "model": "gpt-4o",
            "created_at": "2026-11-24T10:30:00+00:00",
            **parked,
        },
    )
    put(stores, {"pk": GLOBAL.pk, "sk": GLOBAL.window, "committed": Decimal("0.4")})


def reserve(stores: Stores, clock, request_id: str, amount: str, rate: RateCharge | None = None) -> None:
    info = ReservationInfo(request_id, "alice", "chat", "gpt-4o", clock.now(), FAR)
    stores.spend.reserve(info, [Charge(HOUR, Decimal("1"), Decimal(amount), FAR)], rate, 0)


def test_given_an_hour_spent_under_the_old_layout_when_the_user_calls_after_the_upgrade_then_it_is_not_forgotten(
    stores, clock
):
    put(stores, {"pk": HOUR.pk, "sk": HOUR.window, "committed": Decimal("0.9"), "spent": Decimal("0.9"), "calls": 3})

    with pytest.raises(ChargesRefused):
        reserve(stores, clock, "r1", "0.2")
    reserve(stores, clock, "r2", "0.1")

    state = stores.spend.get_counters([HOUR])[HOUR]
    assert (state.committed, state.spent, state.calls) == (Decimal("1.0"), Decimal("0.9"), 3)


def test_given_a_minutes_requests_counted_under_the_old_layout_when_the_user_calls_then_they_count(stores, clock):
    put(stores, {"pk": MINUTE.pk, "sk": MINUTE.window, "requests": 2})

    with pytest.raises(ChargesRefused) as refused:
        reserve(stores, clock, "r1", "0.1", RateCharge(MINUTE, 2, FAR))

    assert refused.value.refused == [MINUTE]


def test_given_an_old_reservation_of_a_dead_call_when_swept_then_its_counters_get_the_amount_back(stores, clock):
    old_reservation(stores, "dead", int(clock.now().timestamp()) - 1)

    result = sweep(stores.reservations, clock)

    assert (result.released, result.released_usd) == (1, Decimal("0.4"))
    assert stores.spend.get_counters([GLOBAL])[GLOBAL].committed == 0
    assert stores.reservations.open_reservations() == []


def test_given_a_settle_an_old_gateway_parked_when_swept_then_the_call_is_recorded_and_charged(
    stores, clock, call_record
):
    record = call_record(request_id="busy", cost_usd=Decimal("0.3"))
    parked = {"settle_usd": Decimal("0.3"), "settle_record": json.dumps(call_item_raw(record))}
    old_reservation(stores, "busy", 0, **parked)

    result = sweep(stores.reservations, clock)

    assert result.settled_for_the_gateway == 1
    state = stores.spend.get_counters([GLOBAL])[GLOBAL]
    assert (state.committed, state.spent, state.calls) == (Decimal("0.3"), Decimal("0.3"), 1)
    recorded = stores.calls.get_call("busy")
    assert recorded is not None and recorded.cost_usd == Decimal("0.3")
    assert stores.reservations.open_reservations() == []


def test_given_old_spend_when_the_users_first_write_after_the_upgrade_only_counts_a_request_then_it_is_kept(
    stores, clock
):
    put(stores, {"pk": HOUR.pk, "sk": HOUR.window, "committed": Decimal("0.9"), "spent": Decimal("0.9"), "calls": 3})
    assert stores.spend.count_request("counted", RateCharge(MINUTE, 10, FAR))  # creates the user's item

    with pytest.raises(ChargesRefused):
        reserve(stores, clock, "r1", "0.2")


def test_given_an_old_reservation_carried_into_the_users_item_when_released_then_the_item_gets_it_back(stores, clock):
    put(stores, {"pk": HOUR.pk, "sk": HOUR.window, "committed": Decimal("0.4")})  # the old reservation's amount
    old_reservation(stores, "dead", int(clock.now().timestamp()) - 1)  # created 10:30, before the carry-over
    clock.advance(60)
    reserve(stores, clock, "new", "0.1")  # the item starts from the old hour: 0.4 + 0.1

    sweep(stores.reservations, clock)

    assert stores.spend.get_counters([HOUR])[HOUR].committed == Decimal("0.1")


def test_given_an_old_reservation_made_after_the_users_item_started_when_released_then_the_item_is_untouched(
    stores, clock
):
    reserve(stores, clock, "new", "0.1")  # the item starts at 10:30 with nothing carried
    clock.advance(60)
    put(stores, {"pk": HOUR.pk, "sk": HOUR.window, "committed": Decimal("0.4")})  # an old gateway's, at 10:31
    old_reservation(stores, "late-old", int(clock.now().timestamp()) - 1, created_at="2026-11-24T10:31:00+00:00")

    sweep(stores.reservations, clock)

    assert stores.spend.get_counters([HOUR])[HOUR].committed == Decimal("0.1")
