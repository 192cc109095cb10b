"""Reconciliation on the local stack: SDK traffic through costbrake, then `costbrake reconcile` against the mock
admin API, which reports what the mock provider billed (plus outside usage and a price change)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from costbrake.local.mock_admin import ANTHROPIC_ADMIN_KEY, GATEWAY_KEY_IDS, OPENAI_ADMIN_KEY, MockAdmin

PROMPT = [{"role": "user", "content": "Reconcile the ledger with the invoice, briefly."}]
# Models no other integration test sends, so their lines hold only this module's calls.
OPENAI_MODEL, ANTHROPIC_MODEL = "gpt-4.1", "claude-opus-4-6"
OUTSIDE_MODEL = "o3-mini"  # used on the provider key directly, never through costbrake (no other test calls it)
DRIFTING_MODEL = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def admin(stack) -> Iterator[MockAdmin]:
    assert stack.mock_provider is not None
    with MockAdmin(stack.mock_provider) as running:
        yield running


@pytest.fixture
def reconcile_cli(cli, admin, monkeypatch):
    monkeypatch.setenv("COSTBRAKE_OPENAI_ADMIN_KEY", OPENAI_ADMIN_KEY)
    monkeypatch.setenv("COSTBRAKE_ANTHROPIC_ADMIN_KEY", ANTHROPIC_ADMIN_KEY)
    monkeypatch.setenv("COSTBRAKE_OPENAI_ADMIN_BASE_URL", admin.base_url)
    monkeypatch.setenv("COSTBRAKE_ANTHROPIC_ADMIN_BASE_URL", admin.base_url)
    monkeypatch.setenv("COSTBRAKE_OPENAI_GATEWAY_KEY_IDS", f'["{GATEWAY_KEY_IDS["openai"]}"]')
    monkeypatch.setenv("COSTBRAKE_ANTHROPIC_GATEWAY_KEY_IDS", f'["{GATEWAY_KEY_IDS["anthropic"]}"]')
    return cli


def _today(result: dict, provider: str) -> dict:
    today = datetime.now(UTC).date().isoformat()
    (day,) = [d for d in result["days"] if d["day"] == today and d["provider"] == provider]
    return day


def _line(day: dict, model: str) -> dict:
    (line,) = [m for m in day["models"] if m["model"] == model]
    return line


def _send(make_key, openai_client, anthropic_client, user_id, *, anthropic_model=ANTHROPIC_MODEL) -> None:
    """Both SDKs, plain and streamed."""
    openai, anthropic = openai_client(make_key(user_id)), anthropic_client(make_key(user_id))
    openai.chat.completions.create(model=OPENAI_MODEL, messages=PROMPT, max_tokens=40)
    list(openai.chat.completions.create(model=OPENAI_MODEL, messages=PROMPT, max_tokens=40, stream=True))
    anthropic.messages.create(model=anthropic_model, max_tokens=40, messages=PROMPT)
    with anthropic.messages.stream(model=anthropic_model, max_tokens=40, messages=PROMPT) as stream:
        stream.until_done()


def test_given_all_spend_through_costbrake_when_reconciled_then_its_models_show_zero_variance(
    stack, reconcile_cli, make_key, openai_client, anthropic_client, user_id
):
    _send(make_key, openai_client, anthropic_client, user_id)

    result = reconcile_cli.json("reconcile", "--days", "2")

    assert result["enabled"] is True and result["errors"] == {}
    for provider, model in (("openai", OPENAI_MODEL), ("anthropic", ANTHROPIC_MODEL)):
        line = _line(_today(result, provider), model)
        assert line["ledger_calls"] >= 2
        assert line["token_variance"] == {"input": 0, "cached": 0, "cache_write": 0, "output": 0}
        assert Decimal(line["provider_usd"]) == Decimal(line["ledger_usd"]) > 0
        assert Decimal(line["variance_usd"]) == 0 and Decimal(line["unguarded_usd"]) == 0
        assert line["drift_usd"] is None


def test_given_spend_outside_costbrake_when_reconciled_with_publish_then_found_attributed_and_alerted(
    stack, reconcile_cli, admin
):
    now = datetime.now(UTC)
    # A script uses the gateway's provider key directly: 2M input tokens of o3-mini ($2.20 at $1.10/M).
    admin.add_outside_usage("openai", OUTSIDE_MODEL, at=now, input_tokens=2_000_000, output_tokens=1_000)

    result = reconcile_cli.json("reconcile", "--days", "1", "--publish")

    day = _today(result, "openai")
    assert day["status"] == "unguarded"
    line = _line(day, OUTSIDE_MODEL)
    assert line["ledger_calls"] == 0 and line["provider_tokens"]["input"] == 2_000_000
    assert Decimal(line["unguarded_usd"]) == Decimal("2.2044")  # 2M x $1.10/M + 1k x $4.40/M
    (finding,) = [f for f in day["findings"] if f["kind"] == "unguarded_spend" and f["model"] == OUTSIDE_MODEL]
    assert "gateway's own provider key" in finding["detail"]
    (alert,) = [a for a in result["alerts"] if a["type"] == "unguarded_spend"]
    assert alert["severity"] == "critical" and alert["scope"] == "provider#openai"
    assert alert["window"] == f"d#{now.date().isoformat()}" and OUTSIDE_MODEL in alert["details"]["models"]
    # Published on the topic through the ledger's alert log, once: a second run finds it already sent.
    logged = stack.stores.alerts.alerts_between(
        now.replace(hour=0, minute=0, second=0, microsecond=0), datetime.now(UTC)
    )
    assert [a["alert_id"] for a in logged if a["type"] == "unguarded_spend"] == [alert["alert_id"]]
    again = reconcile_cli.json("reconcile", "--days", "1", "--publish")
    assert again["alerts"] == []


def test_given_a_provider_price_change_when_reconciled_then_price_drift_names_the_model(
    stack, reconcile_cli, admin, make_key, openai_client, anthropic_client, user_id
):
    _send(make_key, openai_client, anthropic_client, user_id, anthropic_model=DRIFTING_MODEL)
    admin.scale_price(DRIFTING_MODEL, Decimal("1.5"))  # the provider raised its price; costbrake's table did not

    result = reconcile_cli.json("reconcile", "--days", "1")

    day = _today(result, "anthropic")
    line = _line(day, DRIFTING_MODEL)
    assert line["token_variance"] == {"input": 0, "cached": 0, "cache_write": 0, "output": 0}
    assert Decimal(line["price_factor"]) == Decimal("1.5")
    assert Decimal(line["drift_usd"]) == Decimal(line["ledger_usd"]) / 2
    assert DRIFTING_MODEL in day["drift_models"]
    # Only the changed price drifts: not the day's other calls (web search fees included), whatever ran before.
    assert {f["model"] for f in day["findings"] if f["kind"] == "price_drift"} == {DRIFTING_MODEL}
