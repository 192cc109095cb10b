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
from costbrake.gateway.service import Gateway
from costbrake.local import moto_fixes
from costbrake.local.mock_provider import MockProvider
from costbrake.local.template import create_tables, load_template
from costbrake.operations.budgets import seed_defaults
from costbrake.operations.keys import create_key
from costbrake.records import CallRecord
from costbrake.wiring import Stores, gateway_from_settings, stores_from_settings
from moto import mock_aws
from pydantic import SecretStr


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 10, 30, tzinfo=UTC))


@pytest.fixture
def settings() -> Settings:
    return Settings(ledger_table="unit-LedgerTable", calls_table="unit-CallsTable", dynamodb_endpoint_url=None)


@pytest.fixture
def fixed_moto() -> Iterator[None]:
    """moto with the local stack's fixes (``moto_fixes``) for this test only: no test depends on another's order."""
    with moto_fixes.patched():
        yield


@pytest.fixture
def stores(settings: Settings, fixed_moto: None) -> Iterator[Stores]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, load_template(), "unit")
        yield stores_from_settings(settings, sleep=lambda _: None)


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


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    """The mock provider (OpenAI's and Anthropic's HTTP APIs) on a loopback port of its own."""
    with MockProvider() as provider:
        yield provider


@pytest.fixture
def mock_settings(settings: Settings, mock: MockProvider) -> Settings:
    """``settings`` with both providers at the mock provider, with keys."""
    return settings.model_copy(
        update={
            "openai_base_url": mock.base_url,
            "anthropic_base_url": mock.base_url,
            "openai_api_key": SecretStr("mock"),
            "anthropic_api_key": SecretStr("mock"),
        }
    )


@pytest.fixture
def make_gateway(stores: Stores, clock: ManualClock) -> Callable[..., Gateway]:
    """``make(settings, secret=…, user_id=…)``: a gateway over the unit tables, built as Lambda builds it, after
    the default tiers and features are seeded and a user key with ``secret`` is stored (``tier``, ``feature``
    and ``features`` as ``create_key`` takes them)."""

    def make(
        settings: Settings,
        *,
        secret: str,
        user_id: str,
        tier: str = "pro",
        feature: str | None = "chat",
        features: tuple[str, ...] = (),
    ) -> Gateway:
        seed_defaults(stores.admin, clock, settings)
        create_key(
            stores.admin,
            clock,
            user_id=user_id,
            tier=tier,
            service=False,
            feature=feature,
            features=features,
            secret=secret,
        )
        return gateway_from_settings(settings, clock, stores)

    return make
