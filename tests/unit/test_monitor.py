"""The monitor builds the rules' view from the rollups and budgets, and reads old hours only once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer
from costbrake.dal.calls import call_item
from costbrake.dal.rollups import MAX_TRANSACTION_ITEMS, RollupStore
from costbrake.dal.tables import Tables
from costbrake.local.faults import RequestCounter
from costbrake.operations.budgets import seed_defaults
from costbrake.pipeline.alerts import InMemoryPublisher
from costbrake.pipeline.monitor import Monitor
from costbrake.pipeline.rollups import parse_call, plan_transactions
from costbrake.records import UserProfile


@pytest.fixture
def store(stores, settings) -> RollupStore:
    return RollupStore.of(Tables.connect(settings), settings)


@pytest.fixture
def monitor(stores, store, settings, clock) -> Monitor:
    seed_defaults(stores.admin, clock, settings)
    return Monitor(stores.admin, stores.alerts, store, settings, clock, InMemoryPublisher())


def _apply(store, clock, records) -> None:
    """What the aggregator does with these records' stream images."""
    deserializer = TypeDeserializer()
    images = [{k: deserializer.deserialize(v) for k, v in call_item(r).serialize().items()} for r in records]
    for group in plan_transactions([parse_call(image) for image in images], MAX_TRANSACTION_ITEMS):
        store.apply(group, clock.now())


def test_given_rollups_of_past_hours_when_viewed_then_hourly_costs_match_and_old_hours_are_read_once(
    monitor, store, stores, clock, call_record
):
    records = [
        call_record(request_id=f"r{h}", timestamp=clock.now() - timedelta(hours=h), cost_usd=Decimal(h + 1))
        for h in range(30)
    ]
    _apply(store, clock, records)
    snapshot = stores.admin.load_settings()

    view = monitor.spend_view(clock.now(), snapshot)
    counter = RequestCounter().install(store.client)
    again = monitor.spend_view(clock.now(), snapshot)

    global_costs = view.hourly_cost["global"]
    assert sorted(global_costs.values()) == sorted(Decimal(h + 1) for h in range(30))
    assert again.hourly_cost == view.hourly_cost
    assert counter.calls.get("BatchGetItem", 0) <= len(again.hourly_cost)  # one small read per scope, not 14 days


def test_given_user_spike_when_evaluated_then_alerted_and_the_user_blocked(monitor, store, stores, clock, call_record):
    stores.admin.put_user(UserProfile(user_id="heavy", tier="pro"))
    big = [
        call_record(request_id=f"h{i}", user_id="heavy", timestamp=clock.now(), cost_usd=Decimal(3)) for i in range(4)
    ]
    _apply(store, clock, big)

    response = monitor.evaluate()

    assert any(alert.type == "user_spike" and alert.scope == "user#heavy" for alert in response.alerts)
    profile = stores.admin.get_user("heavy")
    assert profile is not None and profile.blocked_until is not None and profile.blocked_until > clock.now()
    (audit,) = stores.admin.user_history("heavy")
    until = profile.blocked_until.isoformat()
    assert (audit.actor, audit.action, audit.new_value) == ("costbrake-anomaly", "block", until)
    assert audit.at == clock.now() and "spent" in audit.reason
    assert not monitor.evaluate().alerts  # the same spike in the same hour is not alerted twice


def test_given_settings_without_blocks_and_a_higher_spike_share_when_evaluated_then_they_rule(
    stores, store, settings, clock, call_record
):
    tuned = settings.model_copy(
        update={"block_on_user_spike": False, "anomaly_user_share_of_daily_budget": Decimal("0.5")}
    )
    seed_defaults(stores.admin, clock, tuned)
    monitor = Monitor(stores.admin, stores.alerts, store, tuned, clock, InMemoryPublisher())
    stores.admin.put_user(UserProfile(user_id="heavy", tier="pro"))
    # $12 in the hour: 36% of the $33.33 daily share of the $1,000 budget; the default 1% would fire.
    _apply(store, clock, [call_record(request_id=f"h{i}", user_id="heavy", cost_usd=Decimal(3)) for i in range(4)])

    quiet = monitor.evaluate()
    tuned = tuned.model_copy(update={"anomaly_user_share_of_daily_budget": Decimal("0.2")})
    alerted = Monitor(stores.admin, stores.alerts, store, tuned, clock, InMemoryPublisher()).evaluate()

    assert not [a for a in quiet.alerts if a.type == "user_spike"]
    assert [a.scope for a in alerted.alerts if a.type == "user_spike"] == ["user#heavy"]
    assert not alerted.actions and stores.admin.get_user("heavy") == UserProfile(user_id="heavy", tier="pro")
