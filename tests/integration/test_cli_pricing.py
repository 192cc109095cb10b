"""`costbrake pricing` against the local stack: an imported price is what the gateway charges next."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

# No other integration test calls o4-mini, so its override cannot change what they expect.
MODEL = "o4-mini"
NEW_INPUT, NEW_OUTPUT = Decimal("0.0000022"), Decimal("0.0000088")  # $2.20 / $8.80 per million
PROMPT = [{"role": "user", "content": "what does this cost?"}]
ESTIMATE = ("--daily-calls", "1000", "--input-tokens", "2000", "--output-tokens", "500", "--model", MODEL)


@pytest.fixture
def litellm_file(tmp_path: Path) -> Path:
    path = tmp_path / "model_prices_and_context_window.json"
    entry = {
        "cache_read_input_token_cost": 5.5e-07,
        "input_cost_per_token": 2.2e-06,
        "litellm_provider": "openai",
        "max_input_tokens": 200000,
        "max_output_tokens": 100000,
        "mode": "chat",
        "output_cost_per_token": 8.8e-06,
        "supports_reasoning": True,
    }
    path.write_text(json.dumps({MODEL: entry, "azure/o4-mini": entry | {"litellm_provider": "azure"}}))
    return path


@pytest.fixture
def restored_price(stack) -> Iterator[None]:
    """The stack is shared: whatever a test did to MODEL's price is undone."""
    yield
    stack.stores.admin.delete_price(MODEL, "test-teardown", stack.clock.now())


def test_given_imported_price_when_sdk_calls_then_the_call_is_recorded_at_the_new_price(
    cli, litellm_file, restored_price, stack, make_key, openai_client, user_id
):
    dry_run = cli("pricing", "import", str(litellm_file))
    applied = json.loads(cli("pricing", "import", str(litellm_file), "--apply", "--actor", "pricing-test", "--json"))
    shown = json.loads(cli("pricing", "show", MODEL, "--json"))
    stack.gateway.forget_cached()  # the gateway reads the change now, not after its cache time

    raw = openai_client(make_key(user_id)).chat.completions.with_raw_response.create(
        model=MODEL, messages=PROMPT, max_completion_tokens=40
    )

    assert "Dry run: nothing stored" in dry_run
    assert applied["applied"] is True and applied["skipped"] == {"other provider": 1}
    assert applied["changed"][MODEL]["input"] == {"old_usd_per_million": "1.1", "new_usd_per_million": "2.2"}
    assert applied["changed"][MODEL]["output"] == {"old_usd_per_million": "4.4", "new_usd_per_million": "8.8"}
    assert shown["source"] == "ledger override (replaces packaged)"
    assert shown["usd_per_million"]["input"] == "2.2" and shown["packaged"]["usd_per_million"]["input"] == "1.1"
    assert shown["history"][-1]["actor"] == "pricing-test"
    record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
    assert record is not None and record.model == MODEL and record.input_tokens > 0
    assert record.cost_usd == record.input_tokens * NEW_INPUT + record.output_tokens * NEW_OUTPUT
    assert Decimal(raw.headers["x-costbrake-cost-usd"]) == record.cost_usd


def test_given_override_when_listed_and_reset_then_packaged_price_is_back(cli, litellm_file, restored_price):
    cli("pricing", "import", str(litellm_file), "--apply")
    listed = {p["model"]: p for p in json.loads(cli("pricing", "list", "--provider", "openai", "--json"))}

    reset = cli("pricing", "reset", MODEL)

    after = json.loads(cli("pricing", "show", MODEL, "--json"))
    assert listed[MODEL]["source"] == "ledger override (replaces packaged)"
    assert listed[MODEL]["usd_per_million"]["output"] == "8.8"
    assert "packaged price applies again (1.1/4.4 per million)" in reset
    assert after["source"] == "packaged" and after["usd_per_million"]["input"] == "1.1"
    assert [h["to"] == "" for h in after["history"][-2:]] == [False, True]


def test_given_price_override_when_estimating_then_the_deployments_price_is_used(cli, litellm_file, restored_price):
    packaged = json.loads(cli("estimate", *ESTIMATE, "--json"))
    cli("pricing", "import", str(litellm_file), "--apply")

    overridden = json.loads(cli("estimate", *ESTIMATE, "--threshold", "250", "--json"))

    # 1,000 calls/day x (2,000 x $1.10 + 500 x $4.40 per million) x 30 = $132; at $2.20 / $8.80: $264.
    (before,) = packaged["models"]
    (after,) = overridden["models"]
    assert (before["per_call_usd"], before["monthly_usd"], before["source"]) == ("0.0044", "132.00", "packaged")
    assert (after["per_call_usd"], after["monthly_usd"]) == ("0.0088", "264.00")
    assert after["source"].startswith("ledger override") and after["over_threshold"] is True
