"""The operator CLI against the running local stack, as a user would run it (env from `costbrake local`)."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import openai
import pytest
from click.testing import CliRunner
from costbrake.cli import main

PROMPT = [{"role": "user", "content": "hello"}]


@pytest.fixture
def cli(stack, monkeypatch):
    for name, value in stack.env_exports().items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    return run


def test_given_cli_created_key_when_sdk_calls_then_budget_show_reports_the_spend(cli, openai_client, user_id):
    secret = cli("keys", "create", "--user", user_id, "--tier", "pro").strip()
    cli("budgets", "set", "--user", user_id, "--hour", "0.5", "--rpm", "100")

    openai_client(secret).chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=20)

    report = json.loads(cli("budget", "show", "--user", user_id, "--json"))
    hour = next(w for w in report["windows"] if w["window"] == "hour" and w["scope"] == f"user {user_id}")
    assert Decimal(hour["limit_usd"]) == Decimal("0.5")
    assert Decimal(hour["spent_usd"]) > 0 and Decimal(hour["reserved_usd"]) == 0
    assert report["tier"] == "pro" and report["requests_per_minute"] == 100


def test_given_cli_switch_off_when_sdk_calls_then_403(cli, openai_client, user_id, stack):
    feature = f"cli-{uuid.uuid4().hex[:6]}"
    secret = cli("keys", "create", "--user", user_id, "--feature", feature).strip()

    out = cli("switch", "set", feature, "off", "--reason", "cost incident", "--actor", "oncall")
    time.sleep(stack.settings.settings_cache_seconds)

    assert "off" in out
    with pytest.raises(openai.PermissionDeniedError, match="cost incident"):
        openai_client(secret).chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=5)


def test_given_budgets_set_without_target_then_usage_error(stack, monkeypatch):
    for name, value in stack.env_exports().items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(main, ["budgets", "set", "--hour", "1"])

    assert result.exit_code == 2 and "exactly one" in result.output
