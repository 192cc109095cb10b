"""Budget standings, run rates and projections (`costbrake status`) and the top spenders (`costbrake top`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from costbrake.budgets import BudgetLine, budget_lines
from costbrake.dal.rollups import RollupStore
from costbrake.dal.spend import ReservationInfo
from costbrake.dal.tables import Tables
from costbrake.operations.features import default_feature
from costbrake.pipeline.rollups import StreamCall
from costbrake.policy import global_budget, user_limits
from costbrake.records import CounterState, GlobalBudget, Limits, SettingsSnapshot, Tier, UserProfile
from costbrake.scopes import Scope
from costbrake.status import (
    FEATURE,
    GLOBAL,
    USER,
    limit_sources,
    read_status,
    run_rate,
    standing,
    trailing_hours,
    user_lines,
    worst_first,
)
from costbrake.top import days_back, read_top
from costbrake.windows import Window, span
from support.aggregate import aggregate_calls

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # the unit clock fixture's time
MONTH = span(Window.MONTH, NOW)


def hour(day: int, at: int) -> datetime:
    return datetime(2026, 11, day, at, tzinfo=UTC)


def line(scope: str, limit: str, window: Window = Window.MONTH, shards: int = 1) -> BudgetLine:
    return BudgetLine(Scope.parse(scope), Decimal(limit), span(window, NOW), shards)


def state(committed: str, spent: str) -> CounterState:
    return CounterState(Decimal(committed), Decimal(spent), 1)


# ---- run rate -------------------------------------------------------------------------------------


def test_given_no_spend_when_run_rate_then_zero():
    assert run_rate({}, NOW) == 0
    assert run_rate({hour(24, 9): Decimal(0)}, NOW) == 0


def test_given_spend_in_the_current_hour_only_when_run_rate_then_it_counts_as_a_whole_hour():
    assert run_rate({hour(24, 10): Decimal("0.5")}, NOW) == Decimal(12)


def test_given_spend_since_yesterday_when_run_rate_then_per_day_since_the_first_hour_with_spend():
    costs = {hour(23, 15): Decimal(0), hour(23, 16): Decimal(1), hour(24, 9): Decimal(2)}

    rate = run_rate(costs, NOW)

    assert rate == Decimal(3) * 86_400 / Decimal(int(18.5 * 3600))  # 16:00 yesterday to 10:30 today


def test_given_now_when_trailing_hours_then_the_current_hour_and_the_23_before_it():
    hours = trailing_hours(NOW)

    assert len(hours) == 24
    assert hours[0].key == "h#2026-11-23T11" and hours[-1].key == "h#2026-11-24T10"


# ---- standings ------------------------------------------------------------------------------------


def test_given_sharded_counters_when_standing_then_shards_are_summed_and_projected_to_the_month_end():
    budget = line("feature#f", "100", shards=2)
    counters = {budget.counter(0): state("30", "25"), budget.counter(1): state("20", "20")}

    found = standing(FEATURE, "f", budget, counters, Decimal(10), NOW)

    assert (found.spent_usd, found.reserved_usd, found.committed_usd) == (Decimal(45), Decimal(5), Decimal(50))
    assert found.remaining_usd == Decimal(50) and found.utilization == Decimal("0.5") and not found.exhausted
    days_left = Decimal(int((MONTH.end - NOW).total_seconds())) / 86_400  # 6 days 13.5 hours
    assert found.projection.projected_usd == Decimal(50) + 10 * days_left
    assert found.projection.exhausted_at == NOW + timedelta(days=5)
    assert found.scope == "feature#f"


def test_given_committed_over_the_limit_when_standing_then_exhausted_now_and_nothing_remains():
    budget = line("user#a", "1", Window.DAY)

    found = standing(USER, "a", budget, {budget.counter(None): state("1.5", "1.5")}, Decimal(0), NOW)

    assert found.exhausted and found.remaining_usd == 0 and found.projection.exhausted_at == NOW
    assert found.utilization == Decimal("1.5")


def test_given_budgets_when_worst_first_then_exhausted_then_soonest_run_out_then_by_utilization():
    def make(name: str, limit: str, committed: str, rate: str) -> object:
        budget = line(f"feature#{name}", limit)
        return standing(FEATURE, name, budget, {budget.counter(None): state(committed, committed)}, Decimal(rate), NOW)

    lasting_low = make("lasting-low", "100", "10", "0")
    lasting_high = make("lasting-high", "100", "90", "0")
    runs_out_late = make("late", "100", "10", "20")  # 90 left at 20/day: 4.5 days
    runs_out_soon = make("soon", "100", "10", "90")  # 1 day
    exhausted = make("exhausted", "100", "100", "0")
    over = make("over", "100", "120", "0")

    order = worst_first([lasting_low, runs_out_late, lasting_high, exhausted, runs_out_soon, over])

    assert [s.name for s in order] == ["over", "exhausted", "soon", "late", "lasting-high", "lasting-low"]


def test_given_limits_when_user_lines_then_only_the_windows_with_a_limit():
    lines = user_lines("alice", Limits(hour_usd=Decimal(1), month_usd=Decimal(50)), NOW)

    assert [(entry.scope.counter_key, entry.span.key, entry.limit) for entry in lines] == [
        ("user#alice", "h#2026-11-24T10", Decimal(1)),
        ("user#alice", "m#2026-11", Decimal(50)),
    ]


def test_given_tier_and_override_when_limit_sources_then_each_limit_names_where_it_comes_from():
    snapshot = SettingsSnapshot(
        tiers={"pro": Tier("pro", Limits(Decimal(5), Decimal(25)))}, features={}, global_budget=None
    )
    profile = UserProfile("alice", "pro", overrides=Limits(month_usd=Decimal(80)))

    assert limit_sources(snapshot, profile) == {
        "hour_usd": "tier pro",
        "day_usd": "tier pro",
        "month_usd": "user override",
        "rpm": "deployment default",
    }


# ---- reading from the ledger (moto) ---------------------------------------------------------------


def stream_call(request_id: str, user: str, at: datetime, cost: str, **fields: object) -> StreamCall:
    values: dict[str, object] = {
        "feature": "chat",
        "model": "gpt-4o",
        "status": "ok",
        "input_tokens": 100,
        "output_tokens": 10,
        "cache_read_tokens": 0,
        "truncated": False,
    }
    return StreamCall(request_id, at, user, cost_usd=Decimal(cost), **(values | fields))  # type: ignore[arg-type]


@pytest.fixture
def store(stores, settings) -> RollupStore:
    return RollupStore.of(Tables.connect(settings), settings, sleep=lambda _: None)


def test_given_daily_rollups_when_top_users_then_summed_over_the_days_ranked_with_shares(store):
    store.apply(
        [
            stream_call("r1", "alice", hour(22, 8), "1"),
            stream_call("r2", "alice", hour(24, 9), "1.5", model="claude-haiku-4-5"),
            stream_call("r3", "alice", hour(24, 10), "0.5"),
            stream_call("r4", "bob", hour(24, 10), "2.5", feature="search"),
            stream_call("r5", "carol", hour(21, 23), "10"),  # before the 3 days
        ],
        NOW,
    )

    users = read_top(store, "users", NOW, days=3, limit=10)
    models = read_top(store, "models", NOW, days=3, limit=1)

    assert [(s.name, s.totals.cost_usd, s.totals.calls) for s in users.spenders] == [
        ("alice", Decimal(3), 3),
        ("bob", Decimal("2.5"), 1),
    ]
    assert users.total.cost_usd == Decimal("5.5") and users.total.calls == 4
    assert [s.share for s in users.spenders] == [Decimal(3) / Decimal("5.5"), Decimal("2.5") / Decimal("5.5")]
    assert [d.key for d in users.days] == ["d#2026-11-22", "d#2026-11-23", "d#2026-11-24"]
    assert [(s.name, s.totals.cost_usd, s.totals.input_tokens) for s in models.spenders] == [
        ("gpt-4o", Decimal(4), 300)
    ]


def test_given_zero_days_when_days_back_then_refused():
    with pytest.raises(ValueError):
        days_back(NOW, 0)


def spend(stores, lines: list[BudgetLine], call: StreamCall, call_record) -> None:
    """Reserve and settle one call against its budget lines, as the gateway does."""
    charges = [entry.charge(call.cost_usd, 0 if entry.sharded else None) for entry in lines]
    info = ReservationInfo(call.request_id, call.user_id, call.feature, call.model, call.timestamp, 0)
    stores.spend.reserve(info, charges, None, 0)
    record = call_record(
        request_id=call.request_id, timestamp=call.timestamp, user_id=call.user_id, cost_usd=call.cost_usd
    )
    stores.spend.settle(call.request_id, charges, call.cost_usd, record)


def test_given_spend_and_rollups_when_status_then_every_budget_with_its_projection_worst_first(
    stores, store, settings, clock, call_record
):
    stores.admin.put_global(GlobalBudget(Decimal(100), 2), "test", NOW)
    stores.admin.put_feature(replace(default_feature(settings, "chat"), month_usd=Decimal(10), shards=2), "test", NOW)
    stores.admin.put_tier(Tier("default", Limits(Decimal(2), Decimal(6), Decimal(40))), "test", NOW)
    stores.admin.put_user(UserProfile("bob", "default", overrides=Limits(day_usd=Decimal(3))))
    calls = [
        stream_call("r1", "alice", hour(24, 8), "2"),
        stream_call("r2", "bob", hour(24, 9), "1"),
        stream_call("r3", "bob", hour(24, 10), "2"),
    ]
    snapshot = stores.admin.load_settings()
    for call in calls:
        limits = user_limits(settings, snapshot, stores.admin.get_user(call.user_id))
        feature = snapshot.features["chat"]
        lines = budget_lines(
            user_id=call.user_id,
            user_limits=limits,
            feature=feature,
            key=None,
            global_budget=global_budget(settings, snapshot),
            now=call.timestamp,
        )
        spend(stores, lines, call, call_record)
    aggregate_calls(stores, NOW)  # the rollups, and the shared counters settled from the records

    found = read_status(stores.admin, store, settings, NOW, top_users=1)

    rows = {(s.scope, s.window.window.value): s for s in found.standings}
    assert found.users == ("bob",)  # the month's top spender only
    assert set(rows) == {
        ("global", "month"),
        ("feature#chat", "month"),
        ("user#bob", "hour"),
        ("user#bob", "day"),
        ("user#bob", "month"),
    }
    bob_day = rows[("user#bob", "day")]
    assert (bob_day.limit_usd, bob_day.spent_usd, bob_day.reserved_usd) == (Decimal(3), Decimal(3), Decimal(0))
    bob_hour = rows[("user#bob", "hour")]  # 2 of 2 in the 10:00 hour
    assert bob_hour.exhausted and bob_day.exhausted and list(found.standings[:2]) == [bob_hour, bob_day]
    bob_rate = Decimal(3) * 86_400 / Decimal(int(1.5 * 3600))  # since 09:00
    assert rows[("user#bob", "month")].projection.rate_usd_per_day == bob_rate
    chat = rows[("feature#chat", "month")]
    chat_rate = Decimal(5) * 86_400 / Decimal(int(2.5 * 3600))  # since 08:00: 48/day
    assert (chat.spent_usd, chat.limit_usd, chat.projection.rate_usd_per_day) == (Decimal(5), Decimal(10), chat_rate)
    assert chat.projection.exhausted_at == NOW + timedelta(seconds=float(Decimal(5) / chat_rate * 86_400))
    assert rows[("global", "month")].spent_usd == Decimal(5)
    # Then the budgets that run out at 48 USD/day: chat (5 left) before bob's month (37) before global (95).
    assert [(s.scope, s.window.window.value) for s in found.standings[2:]] == [
        ("feature#chat", "month"),
        ("user#bob", "month"),
        (GLOBAL, "month"),
    ]
