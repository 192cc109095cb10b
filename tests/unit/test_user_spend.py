"""A user's windows, rate and reservations in one item; shared counters settled from the call records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from costbrake.clock import ManualClock
from costbrake.dal.models import RESERVATIONS_BY_EXPIRY
from costbrake.dal.spend import ChargesRefused, ReservationInfo
from costbrake.pipeline.sweeper import sweep
from costbrake.records import Charge, CounterRef, CounterState, RateCharge
from costbrake.wiring import Stores
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from support.aggregate import aggregate_calls

TTL = 120
FAR = 2_000_000_000


def refs_at(at: datetime, user: str = "alice") -> tuple[CounterRef, CounterRef, CounterRef]:
    hour = CounterRef(f"user#{user}", f"h#{at:%Y-%m-%dT%H}")
    day = CounterRef(f"user#{user}", f"d#{at:%Y-%m-%d}")
    global_ = CounterRef("global", f"m#{at:%Y-%m}", shard=0)
    return hour, day, global_


def charges_at(at: datetime, amount: str, hour_limit: str = "10", user: str = "alice") -> list[Charge]:
    hour, day, global_ = refs_at(at, user)
    return [
        Charge(hour, Decimal(hour_limit), Decimal(amount), FAR),
        Charge(day, Decimal("100"), Decimal(amount), FAR),
        Charge(global_, Decimal("1000"), Decimal(amount), FAR),
    ]


def reserve(
    stores: Stores, at: datetime, request_id: str, amount: str, hour_limit: str = "10", user: str = "alice"
) -> list[Charge]:
    charges = charges_at(at, amount, hour_limit, user)
    info = ReservationInfo(request_id, user, "chat", "gpt-4o", at, int(at.timestamp()) + TTL)
    stores.spend.reserve(info, charges, None, 0)
    return charges


def settle(
    stores: Stores, request_id: str, charges: list[Charge], actual: str, call_record, user: str = "alice"
) -> None:
    record = call_record(request_id=request_id, cost_usd=Decimal(actual), user_id=user)
    stores.spend.settle(request_id, charges, Decimal(actual), record)


def committed(stores: Stores, ref: CounterRef) -> Decimal:
    return stores.spend.get_counters([ref])[ref].committed


def scheduled(stores: Stores) -> list[str]:
    """The user items the sweeper's index lists."""
    found = stores.tables.client.scan(TableName=stores.tables.ledger, IndexName=RESERVATIONS_BY_EXPIRY)["Items"]
    return [item["pk"]["S"] for item in found]


def test_given_a_new_hour_when_reserved_then_the_hour_starts_afresh_and_the_day_carries_on(stores, clock):
    ten = clock.now()
    reserve(stores, ten, "r1", "0.4")
    eleven = ten + timedelta(minutes=35)

    reserve(stores, eleven, "r2", "0.3")

    hour_10, day, _ = refs_at(ten)
    hour_11, _, _ = refs_at(eleven)
    assert (committed(stores, hour_10), committed(stores, hour_11), committed(stores, day)) == (
        Decimal(0),  # the item counts one hour: the 10 o'clock window is over
        Decimal("0.3"),
        Decimal("0.7"),
    )


def test_given_call_reserved_before_the_hour_turned_when_settled_then_only_the_windows_still_counted_move(
    stores, clock, call_record
):
    ten = clock.now()
    charges = reserve(stores, ten, "r1", "0.4")
    eleven = ten + timedelta(minutes=35)
    reserve(stores, eleven, "r2", "0.3")

    settle(stores, "r1", charges, "0.1", call_record)

    hour_11, day, _ = refs_at(eleven)
    assert committed(stores, hour_11) == Decimal("0.3")  # r1 was never in this hour
    state = stores.spend.get_counters([day])[day]
    assert (state.committed, state.spent, state.calls) == (Decimal("0.4"), Decimal("0.1"), 1)
    assert [r.request_id for r in stores.reservations.open_reservations()] == ["r2"]


def test_given_a_full_hour_when_the_next_hour_comes_then_room_again(stores, clock):
    ten = clock.now()
    reserve(stores, ten, "r1", "0.8", hour_limit="1")
    with pytest.raises(ChargesRefused) as refused:
        reserve(stores, ten, "r2", "0.3", hour_limit="1")
    assert refused.value.refused == [refs_at(ten)[0]]

    reserve(stores, ten + timedelta(hours=1), "r3", "0.3", hour_limit="1")


def test_given_a_later_hour_counted_when_a_call_begun_before_the_turn_reserves_then_it_counts_in_its_own_hour(
    stores, clock, call_record
):
    ten = clock.now()
    reserve(stores, ten + timedelta(hours=1), "after", "0.1")

    charges = reserve(stores, ten, "before", "0.2")  # its clock said 10 o'clock; another call was at 11 already
    hour_10, day, _ = refs_at(ten)
    hour_11, _, _ = refs_at(ten + timedelta(hours=1))
    assert (committed(stores, hour_10), committed(stores, hour_11), committed(stores, day)) == (
        Decimal("0.2"),
        Decimal("0.1"),
        Decimal("0.3"),
    )

    settle(stores, "before", charges, "0.05", call_record)

    assert stores.spend.get_counters([hour_10])[hour_10] == CounterState(Decimal("0.05"), Decimal("0.05"), 1)
    assert committed(stores, hour_11) == Decimal("0.1")
    assert [r.request_id for r in stores.reservations.open_reservations()] == ["after"]


def test_given_rate_limit_when_the_minute_turns_then_requests_count_afresh(stores, clock):
    at = clock.now()

    def request(request_id: str, minute: datetime) -> None:
        rate = RateCharge(CounterRef("user#alice", f"rpm#{minute:%Y-%m-%dT%H:%M}"), 2, FAR)
        info = ReservationInfo(request_id, "alice", "chat", "gpt-4o", minute, FAR)
        stores.spend.reserve(info, [], rate, 0)

    request("a", at)
    request("b", at)
    with pytest.raises(ChargesRefused):
        request("c", at)
    request("d", at + timedelta(minutes=1))


def test_given_settled_call_when_aggregated_then_shared_counter_moves_from_reserved_to_actual_once(
    stores, clock, call_record
):
    charges = reserve(stores, clock.now(), "r1", "0.4")
    settle(stores, "r1", charges, "0.1", call_record)
    _, _, global_ = refs_at(clock.now())
    assert committed(stores, global_) == Decimal("0.4")  # held at the reservation until the stream settles it

    assert aggregate_calls(stores, clock.now()) == 1
    assert aggregate_calls(stores, clock.now()) == 0  # a redelivered record changes nothing

    state = stores.spend.get_counters([global_])[global_]
    assert (state.committed, state.spent, state.calls) == (Decimal("0.1"), Decimal("0.1"), 1)


def test_given_reservation_released_by_the_sweeper_when_the_call_settles_late_then_shared_counter_gets_the_cost(
    stores, clock, call_record
):
    charges = reserve(stores, clock.now(), "late", "0.4")
    clock.advance(TTL + 1)
    assert sweep(stores.reservations, clock).released == 1
    _, _, global_ = refs_at(clock.now())
    assert committed(stores, global_) == 0

    settle(stores, "late", charges, "0.25", call_record)
    aggregate_calls(stores, clock.now())

    state = stores.spend.get_counters([global_])[global_]
    assert (state.committed, state.spent) == (Decimal("0.25"), Decimal("0.25"))


def test_given_every_reservation_settled_when_swept_then_the_user_leaves_the_sweepers_index(stores, clock, call_record):
    charges = reserve(stores, clock.now(), "r1", "0.4")
    settle(stores, "r1", charges, "0.1", call_record)
    assert scheduled(stores) == ["ctr#user#alice"]  # its time has not come: the index keeps it
    clock.advance(TTL + 1)

    sweep(stores.reservations, clock)

    assert scheduled(stores) == []


def test_given_an_open_reservation_when_an_older_one_is_swept_then_the_item_waits_for_the_open_ones_expiry(
    stores, clock, call_record
):
    first = reserve(stores, clock.now(), "r1", "0.1")
    clock.advance(60)
    reserve(stores, clock.now(), "r2", "0.1")
    settle(stores, "r1", first, "0.1", call_record)
    clock.advance(TTL - 59)  # r1's time has come, r2's not

    assert sweep(stores.reservations, clock).released == 0

    raw = stores.tables.client.get_item(
        TableName=stores.tables.ledger, Key={"pk": {"S": "ctr#user#alice"}, "sk": {"S": "w"}}
    )["Item"]
    assert int(raw["release_after"]["N"]) == int(clock.now().timestamp()) - 1 + 60  # r2's release time
    clock.advance(60)
    assert sweep(stores.reservations, clock).released == 1


STEP = st.tuples(st.sampled_from(["reserve", "settle", "advance"]), st.integers(0, 4), st.integers(1, 40))


@examples(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=25))
def test_given_any_interleaving_across_hours_then_each_window_holds_exactly_its_calls(steps, stores, call_record):
    """Reserves, settles and clock moves in any order: the item's current hour and day hold the open reservations
    and the settled costs of the calls reserved in them, never those of an earlier window."""
    user = uuid.uuid4().hex[:12]  # one user per example: the tables are the test's
    clock = ManualClock(datetime(2026, 11, 24, 10, 50, tzinfo=UTC))
    calls: dict[str, tuple[datetime, list[Charge], Decimal | None]] = {}
    for action, number, amount in steps:
        request_id = f"{user}-{number}"
        if action == "advance":
            clock.advance(amount * 60)
        elif action == "reserve" and request_id not in calls:
            now = clock.now()
            calls[request_id] = (now, reserve(stores, now, request_id, f"0.{amount:02d}", user=user), None)
        elif action == "settle" and request_id in calls and calls[request_id][2] is None:
            at, charges, _ = calls[request_id]
            actual = min(Decimal(amount) / 1000, charges[0].amount)
            settle(stores, request_id, charges, format(actual, "f"), call_record, user=user)
            calls[request_id] = (at, charges, actual)

    now = clock.now()
    hour, day, _ = refs_at(now, user)
    for ref, stamp in ((hour, "%Y-%m-%dT%H"), (day, "%Y-%m-%d")):
        mine = [(c[0].amount, actual) for at, c, actual in calls.values() if f"{at:{stamp}}" == f"{now:{stamp}}"]
        expected_committed = sum((actual if actual is not None else held for held, actual in mine), Decimal(0))
        expected_spent = sum((actual for _, actual in mine if actual is not None), Decimal(0))
        state = stores.spend.get_counters([ref])[ref]
        assert (state.committed, state.spent) == (expected_committed, expected_spent), ref


def test_given_a_user_calling_once_a_minute_when_each_minute_turns_then_no_transaction_is_wasted(stores, clock):
    def call(request_id: str) -> None:
        at = clock.now()
        rate = RateCharge(CounterRef("user#alice", f"rpm#{at:%Y-%m-%dT%H:%M}"), 5, FAR)
        info = ReservationInfo(request_id, "alice", "chat", "gpt-4o", at, FAR)
        stores.spend.reserve(info, charges_at(at, "0.01"), rate, 0)

    call("first")  # a new user: the guess that the item exists is cancelled once
    before = stores.spend.stats.transactions
    for minute in range(1, 6):
        clock.advance(60)
        call(f"call-{minute}")

    assert stores.spend.stats.transactions - before == 5  # one per call: the minute needs no guess
    raw = stores.tables.client.get_item(
        TableName=stores.tables.ledger, Key={"pk": {"S": "ctr#user#alice"}, "sk": {"S": "w"}}
    )["Item"]
    assert sorted(name for name in raw if name.startswith("rpm#")) == [
        f"rpm#{clock.now() - timedelta(minutes=1):%Y-%m-%dT%H:%M}",
        f"rpm#{clock.now():%Y-%m-%dT%H:%M}",
    ]  # older minutes are removed as the minutes turn


def test_given_minutes_counted_before_a_gap_when_swept_then_the_past_minutes_go(stores, clock, call_record):
    at = clock.now()
    rate = RateCharge(CounterRef("user#alice", f"rpm#{at:%Y-%m-%dT%H:%M}"), 5, FAR)
    info = ReservationInfo("r1", "alice", "chat", "gpt-4o", at, int(at.timestamp()) + TTL)
    charges = charges_at(at, "0.01")
    stores.spend.reserve(info, charges, rate, 0)
    settle(stores, "r1", charges, "0.01", call_record)
    clock.advance(30 * 60)

    sweep(stores.reservations, clock)

    raw = stores.tables.client.get_item(
        TableName=stores.tables.ledger, Key={"pk": {"S": "ctr#user#alice"}, "sk": {"S": "w"}}
    )["Item"]
    assert not [name for name in raw if name.startswith("rpm#")]


def test_given_an_hour_day_and_month_turning_when_the_user_calls_then_no_transaction_is_wasted(stores, clock):
    reserve(stores, clock.now(), "first", "0.1")  # a new user: the guess that the item exists is cancelled once
    before = stores.spend.stats.transactions

    clock.advance(timedelta(days=7, hours=1).total_seconds())  # 2026-12-01T11:30: a new hour, day and month
    reserve(stores, clock.now(), "later", "0.2")

    assert stores.spend.stats.transactions - before == 1
    hour, day, _ = refs_at(clock.now())
    assert (committed(stores, hour), committed(stores, day)) == (Decimal("0.2"), Decimal("0.2"))


def test_given_windows_two_turns_old_when_swept_then_their_attributes_go_and_the_current_ones_stay(
    stores, clock, call_record
):
    charges = reserve(stores, clock.now(), "r1", "0.4")
    settle(stores, "r1", charges, "0.1", call_record)
    clock.advance(timedelta(hours=3).total_seconds())  # 13:30: hour 10 is two turns old, the day is the same

    sweep(stores.reservations, clock)

    raw = stores.tables.client.get_item(
        TableName=stores.tables.ledger, Key={"pk": {"S": "ctr#user#alice"}, "sk": {"S": "w"}}
    )["Item"]
    assert not [name for name in raw if name.startswith("h#")]
    _, day, _ = refs_at(clock.now())
    assert stores.spend.get_counters([day])[day] == CounterState(Decimal("0.1"), Decimal("0.1"), 1)


def test_given_a_user_with_no_spend_limits_when_reserving_then_the_items_ttl_outlives_the_reservation(stores, clock):
    at = clock.now()
    rate = RateCharge(CounterRef("user#bob", f"rpm#{at:%Y-%m-%dT%H:%M}"), 5, int(at.timestamp()) + 600)
    assert stores.spend.count_request("counted", rate)  # the item starts with the minute's short TTL
    release_after = int(at.timestamp()) + TTL
    info = ReservationInfo("r1", "bob", "chat", "gpt-4o", at, release_after)

    stores.spend.reserve(info, [Charge(refs_at(at, "bob")[2], Decimal("100"), Decimal("0.1"), FAR)], rate, 0)

    raw = stores.tables.client.get_item(
        TableName=stores.tables.ledger, Key={"pk": {"S": "ctr#user#bob"}, "sk": {"S": "w"}}
    )["Item"]
    assert int(raw["expires_at"]["N"]) > release_after + 86_400


def test_given_more_due_users_than_one_run_takes_when_swept_then_every_bucket_gets_its_share(stores, clock):
    from costbrake.dal.spend import SWEEP_BUCKETS, sweep_bucket

    users: dict[str, list[str]] = {}
    n = 0
    while len(users) < SWEEP_BUCKETS or min(len(found) for found in users.values()) < 3:
        user = f"user{n}"
        users.setdefault(sweep_bucket(user), []).append(user)
        n += 1
    at = clock.now()
    for bucket_users in users.values():
        for user in bucket_users[:3]:
            info = ReservationInfo(f"dead-{user}", user, "chat", "gpt-4o", at, int(at.timestamp()) + TTL)
            stores.spend.reserve(info, [Charge(refs_at(at, user)[0], Decimal("1"), Decimal("0.1"), FAR)], None, 0)
    clock.advance(TTL + 1)

    due = stores.reservations.expired_reservations(int(clock.now().timestamp()), limit=SWEEP_BUCKETS)

    assert sorted(sweep_bucket(r.user_pk.removeprefix("ctr#user#")) for r in due) == sorted(users)
