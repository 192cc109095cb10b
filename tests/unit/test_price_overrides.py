"""Operators' prices in the ledger: stored exactly and audited, and used by the gateway within its cache time."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from costbrake.clock import ManualClock
from costbrake.config import Settings
from costbrake.gateway.asgi import build_app
from costbrake.gateway.service import Gateway
from costbrake.local.app_client import AppClient
from costbrake.pricing import ModelPrice
from costbrake.wiring import Stores

GPT_4O_MINI_RAISED = ModelPrice.from_spec(
    "gpt-4o-mini",
    {"litellm_provider": "openai", "input_cost_per_token": "0.000001", "output_cost_per_token": "0.000004"},
)
NEW_MODEL = ModelPrice.from_spec(
    "gpt-4.1-nano",
    {"litellm_provider": "openai", "input_cost_per_token": "1E-7", "output_cost_per_token": "4E-7"},
)
SECRET = "cb-unit-price-overrides"


@pytest.fixture
def gateway(make_gateway, mock_settings: Settings) -> Gateway:
    return make_gateway(mock_settings, secret=SECRET, user_id="price-user")


def call(gateway: Gateway, model: str) -> tuple[Decimal, str]:
    """(cost header, request id) of one call through the gateway's app."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "price check"}], "max_tokens": 50})
    with AppClient(build_app(gateway)) as client:
        response = client.request("POST", "/v1/chat/completions", {"authorization": f"Bearer {SECRET}"}, body.encode())
    assert response.status_code == 200, response.text
    return Decimal(response.headers["x-costbrake-cost-usd"]), response.headers["x-costbrake-request-id"]


def test_given_prices_put_when_settings_loaded_then_they_come_back_exact(stores: Stores, clock: ManualClock):
    stores.admin.put_prices([GPT_4O_MINI_RAISED, NEW_MODEL], "ops", clock.now(), reason="test")

    prices = stores.admin.load_settings().prices

    assert prices == {"gpt-4o-mini": GPT_4O_MINI_RAISED, "gpt-4.1-nano": NEW_MODEL}
    assert prices["gpt-4.1-nano"].rates.input == Decimal("0.0000001")


def test_given_price_changed_twice_and_reset_then_history_has_each_step(stores: Stores, clock: ManualClock):
    stores.admin.put_prices([GPT_4O_MINI_RAISED], "alice", clock.now(), reason="first")
    clock.advance(60)
    cheaper = ModelPrice.from_spec(
        "gpt-4o-mini",
        {"litellm_provider": "openai", "input_cost_per_token": "2E-7", "output_cost_per_token": "8E-7"},
    )
    stores.admin.put_prices([cheaper], "bob", clock.now())
    clock.advance(60)

    removed = stores.admin.delete_price("gpt-4o-mini", "carol", clock.now(), reason="back to packaged")
    removed_again = stores.admin.delete_price("gpt-4o-mini", "carol", clock.now())

    history = stores.admin.price_history("gpt-4o-mini")
    assert removed and not removed_again
    assert [(h["actor"], h["reason"]) for h in history] == [
        ("alice", "first"),
        ("bob", ""),
        ("carol", "back to packaged"),
    ]
    assert history[0]["from"] == "" and json.loads(history[1]["from"])["input_cost_per_token"] == "0.000001"
    assert json.loads(history[1]["to"])["input_cost_per_token"] == "2E-7" and history[2]["to"] == ""
    assert stores.admin.load_settings().prices == {}


def test_given_more_prices_than_one_transaction_holds_when_put_then_all_are_stored(stores: Stores, clock):
    prices = [
        ModelPrice.from_spec(
            f"model-{n:03d}",
            {"litellm_provider": "openai", "input_cost_per_token": f"{n + 1}E-8", "output_cost_per_token": "1E-6"},
        )
        for n in range(120)
    ]

    stores.admin.put_prices(prices, "ops", clock.now())

    stored = stores.admin.load_settings().prices
    assert len(stored) == 120 and stored["model-119"].rates.input == Decimal("0.0000012")


def test_given_override_when_called_after_cache_time_then_call_is_recorded_at_the_override_price(
    gateway: Gateway, stores: Stores, clock: ManualClock
):
    packaged_cost, before_id = call(gateway, "gpt-4o-mini")
    stores.admin.put_prices([GPT_4O_MINI_RAISED], "ops", clock.now())
    clock.advance(gateway.settings.settings_cache_seconds + 1)

    header_cost, after_id = call(gateway, "gpt-4o-mini")

    before, after = stores.calls.get_call(before_id), stores.calls.get_call(after_id)
    assert before is not None and after is not None
    assert (
        before.cost_usd
        == packaged_cost
        == (before.input_tokens * Decimal("0.00000015") + before.output_tokens * Decimal("0.0000006"))
    )
    assert (
        after.cost_usd
        == header_cost
        == (after.input_tokens * Decimal("0.000001") + after.output_tokens * Decimal("0.000004"))
    )
    assert after.cost_usd > packaged_cost


def test_given_override_within_cache_time_then_gateway_still_uses_its_snapshot(gateway, stores, clock):
    call(gateway, "gpt-4o-mini")  # loads and caches the settings
    stores.admin.put_prices([GPT_4O_MINI_RAISED], "ops", clock.now())

    _, cached_id = call(gateway, "gpt-4o-mini")

    record = stores.calls.get_call(cached_id)
    assert record is not None
    assert record.cost_usd == record.input_tokens * Decimal("0.00000015") + record.output_tokens * Decimal("0.0000006")


def test_given_new_model_priced_in_ledger_then_it_is_listed_and_callable(gateway: Gateway, stores, clock):
    stores.admin.put_prices([NEW_MODEL], "ops", clock.now())

    listed = {entry["id"] for entry in gateway.models()["data"]}
    cost, nano_id = call(gateway, "gpt-4.1-nano")

    record = stores.calls.get_call(nano_id)
    assert {"gpt-4.1-nano", "gpt-4o", "claude-sonnet-4-5"} <= listed
    assert record is not None and record.model == "gpt-4.1-nano"
    assert cost == record.input_tokens * Decimal("1E-7") + record.output_tokens * Decimal("4E-7")


def test_given_one_snapshot_then_the_merged_table_is_built_once(gateway: Gateway, stores, clock):
    stores.admin.put_prices([NEW_MODEL], "ops", clock.now())
    snapshot = gateway.snapshot()

    first, second = gateway.price_table(snapshot), gateway.price_table(snapshot)
    clock.advance(gateway.settings.settings_cache_seconds + 1)
    refreshed = gateway.price_table(gateway.snapshot())

    assert first is second
    assert refreshed is not first and "gpt-4.1-nano" in refreshed


def test_given_no_overrides_then_the_packaged_table_is_used_as_is(gateway: Gateway):
    assert gateway.price_table(gateway.snapshot()) is gateway.prices
