"""Unit fixtures: moto in-process (no network), tables created from template.yaml."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from costbrake.clock import ManualClock
from costbrake.config import Settings
from costbrake.dal import Ledger
from costbrake.local.template import create_tables, load_template
from costbrake.records import CallRecord
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


@pytest.fixture
def call_record() -> Callable[..., CallRecord]:
    """A complete call record; tests override the fields they care about."""

    def make(**overrides: Any) -> CallRecord:
        fields: dict[str, Any] = {
            "request_id": "r1",
            "timestamp": datetime(2026, 11, 24, 10, 30, tzinfo=UTC),
            "user_id": "alice",
            "feature": "chat",
            "key_id": "k",
            "provider": "openai",
            "model_requested": "gpt-4o",
            "model": "gpt-4o",
            "status": "ok",
            "http_status": 200,
            "cost_usd": Decimal("0.01"),
            "reserved_usd": Decimal("0.4"),
            "input_tokens": 10,
            "output_tokens": 20,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "estimated_input_tokens": 12,
            "max_output_tokens": 100,
            "usage_estimated": False,
            "finish_reason": "stop",
            "truncated": False,
            "stream": False,
            "downgraded_from": None,
            "system_prompt_sha256": None,
            "latency_ms": 5,
        }
        return CallRecord(**(fields | overrides))

    return make
