from datetime import UTC, datetime
from decimal import Decimal

from costbrake.budgets import BudgetLine, budget_lines
from costbrake.records import ApiKey, Feature, GlobalBudget, Limits
from costbrake.scopes import GLOBAL
from costbrake.windows import Window, span

NOW = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)


def test_given_last_seconds_of_year_when_spans_computed_then_every_window_rolls_over_together():
    for window in (Window.MINUTE, Window.HOUR, Window.DAY, Window.MONTH):
        assert span(window, NOW).end == datetime(2027, 1, 1, tzinfo=UTC)
        assert span(window, NOW).seconds_left(NOW) == 30


def test_given_a_time_when_keyed_then_keys_name_the_window_start():
    assert span(Window.HOUR, NOW).key == "h#2026-12-31T23"
    assert span(Window.DAY, NOW).key == "d#2026-12-31"
    assert span(Window.MONTH, NOW).key == "m#2026-12"
    assert span(Window.MINUTE, NOW).key == "rpm#2026-12-31T23:59"


def test_given_sharded_line_when_split_then_shards_never_hold_more_than_the_limit():
    line = BudgetLine(GLOBAL, Decimal("100"), span(Window.MONTH, NOW), shards=7)

    assert line.shard_limit * 7 <= Decimal("100")
    assert Decimal("100") - line.shard_limit * 7 < Decimal("0.00001")
    assert {ref.shard for ref in line.counters()} == set(range(7))


def test_given_user_feature_key_and_global_limits_then_every_window_applies():
    lines = budget_lines(
        user_id="alice",
        user_limits=Limits(Decimal("1"), Decimal("5"), Decimal("50"), 20),
        feature=Feature("chat", month_usd=Decimal("400"), shards=2),
        key=ApiKey("k1", "alice", False, month_usd=Decimal("30")),
        global_budget=GlobalBudget(Decimal("1000"), 8),
        now=NOW,
    )

    assert [(line.scope.counter_key, line.window) for line in lines] == [
        ("user#alice", Window.HOUR),
        ("user#alice", Window.DAY),
        ("user#alice", Window.MONTH),
        ("feature#chat", Window.MONTH),
        ("key#k1", Window.MONTH),
        ("global", Window.MONTH),
    ]
    assert [line.shards for line in lines] == [1, 1, 1, 2, 1, 8]


def test_given_limits_when_overridden_then_only_set_fields_change():
    base = Limits(Decimal("1"), Decimal("5"), Decimal("50"), 20)

    assert base.overridden_by(Limits(day_usd=Decimal("9"))) == Limits(Decimal("1"), Decimal("9"), Decimal("50"), 20)
