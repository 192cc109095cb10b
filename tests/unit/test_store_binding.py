"""Each store carries its own tables: two deployments in one process never see each other's items."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest
from costbrake.config import Settings
from costbrake.dal.spend import ReservationInfo
from costbrake.local.template import create_tables, load_template
from costbrake.records import ApiKey, Charge, CounterRef, Feature
from costbrake.wiring import Stores, stores_from_settings
from moto import mock_aws

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
HOUR = CounterRef("user#alice", "h#2026-11-24T10")


def _stores(prefix: str) -> Stores:
    names = create_tables(boto3.client("dynamodb", region_name="us-east-1"), load_template(), prefix)
    settings = Settings(ledger_table=names["LedgerTable"], calls_table=names["CallsTable"], dynamodb_endpoint_url=None)
    return stores_from_settings(settings, sleep=lambda _: None)


@pytest.fixture
def two() -> Iterator[tuple[Stores, Stores]]:
    with mock_aws():
        yield _stores("blue"), _stores("green")


def test_given_two_deployments_in_one_process_when_each_writes_then_neither_sees_the_others_items(two):
    blue, green = two

    blue.admin.put_feature(Feature("blue-only"), "lead", NOW)  # green built last: no process-wide rebinding
    green.admin.put_feature(Feature("green-only"), "lead", NOW)
    blue.admin.put_key("hash", ApiKey("k-blue", "alice", False), NOW)
    charge = Charge(HOUR, Decimal(1), Decimal("0.4"), 0)
    blue.spend.reserve(ReservationInfo("r1", "alice", "chat", "gpt-4o", NOW, 0), [charge], None, 0)

    assert set(blue.spend.load_settings().features) == {"blue-only"}
    assert set(green.spend.load_settings().features) == {"green-only"}
    assert green.spend.get_key("hash") is None and blue.spend.get_key("hash") is not None
    assert green.spend.get_counters([HOUR])[HOUR].committed == 0
    assert blue.spend.get_counters([HOUR])[HOUR].committed == Decimal("0.4")
    assert [r.request_id for r in blue.reservations.open_reservations()] == ["r1"]
    assert green.reservations.open_reservations() == []
    assert blue.tables.client is not green.tables.client
