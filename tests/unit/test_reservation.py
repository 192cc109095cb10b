"""A spent budget is refused at once; a busy one waits, clamps or answers a retryable 429 (issue 8, item 8)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from costbrake.budgets import BudgetLine
from costbrake.clock import ManualClock
from costbrake.dal.spend import ReservationInfo
from costbrake.errors import BudgetBusy, BudgetExceeded
from costbrake.gateway.reservation import Admission, CallCost, Reserver
from costbrake.records import CallRecord
from costbrake.scopes import Scope
from costbrake.windows import Window, span
from costbrake.wiring import Stores

LIMIT = Decimal("0.05")
PER_OUTPUT_TOKEN = Decimal("0.00001")  # gpt-4o's output rate
INPUT_COST = Decimal("0.0001")


def cost(max_output: int = 1000, floor: int = 64) -> CallCost:
    return CallCost(lambda tokens: INPUT_COST + tokens * PER_OUTPUT_TOKEN, max_output, floor)


@pytest.fixture
def hour_line(clock: ManualClock) -> BudgetLine:
    return BudgetLine(Scope.user("alice"), LIMIT, span(Window.HOUR, clock.now()))


@pytest.fixture
def make_reserver(stores: Stores, clock: ManualClock) -> Callable[..., Reserver]:
    def make(wait_seconds: float = 1.0, on_sleep: Callable[[], None] = lambda: None) -> Reserver:
        elapsed = [0.0]

        def sleep(seconds: float) -> None:
            elapsed[0] += seconds
            on_sleep()

        return Reserver(stores.spend, clock, wait_seconds, sleep, lambda: elapsed[0])

    return make


def reserve(reserver: Reserver, line: BudgetLine, clock: ManualClock, request_id: str, call: CallCost) -> Admission:
    info = ReservationInfo(request_id, "alice", "chat", "gpt-4o", clock.now(), 10**10)
    return reserver.reserve(info, [line], call, None, clock.now())


def settle(
    stores: Stores, admission: Admission, request_id: str, actual: Decimal, record: Callable[..., CallRecord]
) -> None:
    stores.spend.settle(request_id, admission.charges, actual, record(request_id=request_id, cost_usd=actual))


def test_given_room_for_the_worst_case_when_reserving_then_the_call_is_admitted_unclamped(
    make_reserver, hour_line, clock
):
    admitted = reserve(make_reserver(), hour_line, clock, "r1", cost())

    assert admitted.max_output_tokens == 1000
    assert admitted.amount == INPUT_COST + 1000 * PER_OUTPUT_TOKEN


def test_given_a_budget_spent_by_settled_calls_when_reserving_then_refused_at_once_without_waiting(
    make_reserver, stores, hour_line, clock, call_record
):
    reserver = make_reserver()
    first = reserve(reserver, hour_line, clock, "r1", cost(max_output=4990, floor=4990))
    settle(stores, first, "r1", LIMIT - Decimal("0.0001"), call_record)
    slept: list[int] = []
    waiting = make_reserver(on_sleep=lambda: slept.append(1))

    with pytest.raises(BudgetExceeded) as refused:
        reserve(waiting, hour_line, clock, "r2", cost())

    assert not slept
    assert refused.value.headers["x-should-retry"] == "false"
    assert "spent" in refused.value.message


def test_given_less_room_than_the_worst_case_when_the_feature_clamps_then_the_output_bound_is_lowered_to_fit(
    make_reserver, hour_line, clock
):
    reserver = make_reserver()
    reserve(reserver, hour_line, clock, "r1", cost(max_output=4000, floor=4000))  # holds 0.0401 of 0.05

    admitted = reserve(reserver, hour_line, clock, "r2", cost())

    room = LIMIT - (INPUT_COST + 4000 * PER_OUTPUT_TOKEN)
    assert 64 <= admitted.max_output_tokens < 1000
    assert admitted.amount <= room
    assert cost().of_output(admitted.max_output_tokens + 1) > room  # the largest bound that fits


def test_given_room_held_only_by_a_call_in_flight_when_it_settles_during_the_wait_then_the_next_call_is_admitted(
    make_reserver, stores, hour_line, clock, call_record
):
    holder = reserve(make_reserver(), hour_line, clock, "r1", cost(max_output=4990, floor=4990))
    settled: list[int] = []

    def settle_the_holder() -> None:
        if not settled:
            settle(stores, holder, "r1", Decimal("0.0004"), call_record)
            settled.append(1)

    admitted = reserve(make_reserver(on_sleep=settle_the_holder), hour_line, clock, "r2", cost())

    assert settled, "the call waited for the call in flight"
    assert admitted.max_output_tokens == 1000


def test_given_room_held_by_calls_in_flight_past_the_wait_when_reserving_then_a_retryable_429_names_the_budget(
    make_reserver, hour_line, clock
):
    reserve(make_reserver(), hour_line, clock, "r1", cost(max_output=4990, floor=4990))

    with pytest.raises(BudgetBusy) as busy:
        reserve(make_reserver(wait_seconds=0.3), hour_line, clock, "r2", cost())

    assert busy.value.status == 429
    assert busy.value.headers["x-should-retry"] == "true"
    assert busy.value.headers["Retry-After"] == "1"
    assert busy.value.scope == "user alice"


def test_given_a_call_whose_floor_exceeds_the_whole_limit_when_reserving_then_refused_as_over_the_whole_budget(
    make_reserver, hour_line, clock
):
    with pytest.raises(BudgetExceeded) as refused:
        reserve(make_reserver(), hour_line, clock, "r1", cost(max_output=6000, floor=6000))

    assert "whole" in refused.value.message


def test_given_a_worst_case_above_the_whole_limit_when_the_feature_clamps_then_it_is_clamped_to_the_limit(
    make_reserver, hour_line, clock
):
    admitted = reserve(make_reserver(), hour_line, clock, "r1", cost(max_output=8000))

    assert admitted.amount <= LIMIT
    assert admitted.max_output_tokens == int((LIMIT - INPUT_COST) / PER_OUTPUT_TOKEN)


def test_given_a_ledger_that_refuses_forever_while_its_counters_show_room_then_the_reserver_gives_up_with_503(
    make_reserver, hour_line, clock, stores, monkeypatch
):
    from costbrake.dal.spend import ChargesRefused
    from costbrake.errors import LedgerUnavailable
    from costbrake.gateway.reservation import MAX_ATTEMPTS

    attempts = []

    def refuse(info, charges, rate, attempt):
        attempts.append(attempt)
        raise ChargesRefused([charges[0].counter])

    monkeypatch.setattr(stores.spend, "reserve", refuse)  # the counters read empty: "room came free" each time

    with pytest.raises(LedgerUnavailable):
        reserve(make_reserver(), hour_line, clock, "r1", cost())

    assert len(attempts) == MAX_ATTEMPTS
