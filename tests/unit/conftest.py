"""Unit fixtures: moto in-process (no network), tables created from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from costbrake.clock import ManualClock
from costbrake.config import Settings
from costbrake.dal import Ledger
from costbrake.local.template import create_tables, load_template
from moto import mock_aws


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 10, 30, tzinfo=UTC))


@pytest.fixture
def settings() -> Settings:
    return Settings(ledger_table="unit-LedgerTable", calls_table="unit-CallsTable", dynamodb_endpoint_url=None)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, load_template(), "unit")
        yield Ledger(settings, sleep=lambda _: None)
