"""The roles of the functions that write the ledger allow every request their code sends (issue 9's layout: the
user's item, shared counters settled by the aggregator, the sweeper's rescheduling and the upgrade path)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from costbrake.clock import ManualClock
from costbrake.config import Settings
from costbrake.dal.calls import call_item_raw
from costbrake.dal.spend import ReservationInfo
from costbrake.local.faults import ConflictInjector
from costbrake.pipeline.sweeper import sweep
from costbrake.records import CallRecord, Charge, CounterRef, RateCharge
from costbrake.wiring import Stores, stores_from_settings
from policy_grants import DynamoRequests, grants
from support.aggregate import aggregate_calls

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
HOUR = CounterRef("user#alice", "h#2026-11-24T10")
MINUTE = CounterRef("user#alice", "rpm#2026-11-24T10:30")
GLOBAL = CounterRef("global", "m#2026-11", shard=0)
FAR = 2_000_000_000


@pytest.fixture
def settings(tables: dict[str, str]) -> Settings:
    return Settings(ledger_table=tables["LedgerTable"], calls_table=tables["CallsTable"], dynamodb_endpoint_url=None)


def fresh_stores(settings: Settings) -> Stores:
    return stores_from_settings(settings, sleep=lambda _: None)


def record(request_id: str, user_id: str = "alice", cost: str = "0.1") -> CallRecord:
    return CallRecord(
        request_id=request_id, timestamp=NOW, user_id=user_id, feature="chat", key_id="k", provider="openai",
        model_requested="gpt-4o", model="gpt-4o", status="ok", http_status=200, cost_usd=Decimal(cost),
        reserved_usd=Decimal("0.4"), input_tokens=10, output_tokens=20, cache_read_tokens=0, cache_write_tokens=0,
        reasoning_tokens=0, estimated_input_tokens=12, max_output_tokens=100, usage_estimated=False,
        finish_reason="stop", truncated=False, stream=False, downgraded_from=None, system_prompt_sha256=None,
        latency_ms=5, error=None,
    )  # fmt: skip


def reserve(stores: Stores, request_id: str, user_id: str = "alice", release_after: int = FAR) -> list[Charge]:
    charges = [Charge(GLOBAL, Decimal("100"), Decimal("0.4"), FAR)]
    if user_id == "alice":
        charges.insert(0, Charge(HOUR, Decimal("10"), Decimal("0.4"), FAR))
    info = ReservationInfo(request_id, user_id, "chat", "gpt-4o", NOW, release_after)
    stores.spend.reserve(info, charges, None, 0)
    return charges


def function(template: dict[str, Any], name: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][name]["Properties"]
    return properties


def test_given_the_gateways_role_when_it_reserves_settles_parks_and_counts_then_every_request_is_granted(
    tables, template, settings
):
    gateway = fresh_stores(settings)
    seen = DynamoRequests(tables).watch(gateway.tables.client)

    settled = reserve(gateway, "ok")
    gateway.spend.settle("ok", settled, Decimal("0.1"), record("ok"))
    throttled = reserve(gateway, "busy")
    throttling = ConflictInjector(hold_seconds=0, throttle_every=1).install(gateway.tables.client)
    gateway.spend.settle("busy", throttled, Decimal("0.1"), record("busy"))  # parked on the user's item
    throttling.uninstall()
    # A user without windows whose reservation the sweeper released: the late settle only checks the item.
    late = reserve(gateway, "late", user_id="bob", release_after=0)
    sweep(fresh_stores(settings).reservations, ManualClock(NOW))
    gateway.spend.settle("late", late, Decimal("0.1"), record("late", user_id="bob"))
    gateway.spend.count_request("counted", RateCharge(MINUTE, 100, FAR))
    gateway.spend.record_free_call(record("free", cost="0"), RateCharge(MINUTE, 100, FAR))

    assert ("dynamodb:ConditionCheckItem", "LedgerTable.Arn") in seen.requests  # the late settle's path ran
    assert seen.requests <= grants(function(template, "GatewayFunction"), template)


def test_given_the_sweepers_role_when_it_releases_settles_parked_reschedules_and_upgrades_then_every_request_is_granted(
    tables, template, settings
):
    gateway = fresh_stores(settings)
    reserve(gateway, "dead", release_after=0)
    finished = reserve(gateway, "finished", user_id="bob", release_after=0)
    gateway.spend.settle("finished", finished, Decimal("0.1"), record("finished", user_id="bob"))
    parked = reserve(gateway, "busy", user_id="carol")
    throttling = ConflictInjector(hold_seconds=0, throttle_every=1).install(gateway.tables.client)
    gateway.spend.settle("busy", parked, Decimal("0.1"), record("busy", user_id="carol"))
    throttling.uninstall()
    old = {"settle_usd": {"N": "0.1"}, "settle_record": {"S": json.dumps(call_item_raw(record("old")))}}
    legacy = {
        "pk": {"S": "res#old"}, "sk": {"S": "res"}, "release_after": {"N": "0"}, "sweep_bucket": {"S": "b#0"},
        "charges": {"S": json.dumps([[GLOBAL.pk, GLOBAL.window, "0.4"]])}, "user_id": {"S": "dave"},
        "feature": {"S": "chat"}, "model": {"S": "gpt-4o"}, "created_at": {"S": NOW.isoformat()},
    }  # fmt: skip
    gateway.tables.client.put_item(TableName=tables["LedgerTable"], Item=legacy | old)
    sweeper = fresh_stores(settings)
    seen = DynamoRequests(tables).watch(sweeper.tables.client)

    result = sweep(sweeper.reservations, ManualClock(NOW))

    assert (result.released, result.settled_for_the_gateway) == (1, 2)
    assert ("dynamodb:UpdateItem", "LedgerTable.Arn") in seen.requests
    assert seen.requests <= grants(function(template, "SweeperFunction"), template)


def test_given_the_aggregators_role_when_it_settles_shared_counters_then_every_request_is_granted(
    tables, template, settings
):
    gateway = fresh_stores(settings)
    charges = reserve(gateway, "ok")
    gateway.spend.settle("ok", charges, Decimal("0.1"), record("ok"))
    aggregator = fresh_stores(settings)
    seen = DynamoRequests(tables).watch(aggregator.tables.client)

    assert aggregate_calls(aggregator, NOW) == 1

    assert aggregator.spend.get_counters([GLOBAL])[GLOBAL].committed == Decimal("0.1")
    granted = grants(function(template, "AggregatorFunction"), template)
    assert {request for request in seen.requests if request[0] != "dynamodb:Scan"} <= granted  # Scan: the test's
