import pytest
from costbrake.config import Settings
from pydantic import ValidationError


def test_given_provider_timeout_above_integration_timeout_when_loaded_then_refused():
    with pytest.raises(ValidationError, match="provider_timeout_seconds"):
        Settings(ledger_table="led", calls_table="cal", provider_timeout_seconds=900)


def test_given_reservation_expiring_before_lambda_timeout_when_loaded_then_refused():
    with pytest.raises(ValidationError, match="lambda_timeout_seconds"):
        Settings(ledger_table="led", calls_table="cal", reservation_ttl_seconds=900)


def test_given_no_table_names_when_loaded_then_refused(monkeypatch):
    monkeypatch.delenv("COSTBRAKE_LEDGER_TABLE", raising=False)
    with pytest.raises(ValidationError, match="ledger_table"):
        Settings(calls_table="cal")


def test_given_env_when_loaded_then_values_are_validated(monkeypatch):
    monkeypatch.setenv("COSTBRAKE_LEDGER_TABLE", "led")
    monkeypatch.setenv("COSTBRAKE_CALLS_TABLE", "cal")
    monkeypatch.setenv("COSTBRAKE_GLOBAL_MONTH_USD", "not-money")
    with pytest.raises(ValidationError, match="global_month_usd"):
        Settings()


def test_given_action_policy_in_env_when_loaded_then_parsed_and_checked(monkeypatch):
    monkeypatch.setenv("COSTBRAKE_LEDGER_TABLE", "led")
    monkeypatch.setenv("COSTBRAKE_CALLS_TABLE", "cal")
    monkeypatch.setenv("COSTBRAKE_SWITCH_OFF_AT_PCT", '{"deep-analysis": 100}')
    monkeypatch.setenv("COSTBRAKE_BLOCK_MINUTES", "15")

    assert Settings().switch_off_at_pct == {"deep-analysis": 100} and Settings().block_minutes == 15
    monkeypatch.setenv("COSTBRAKE_DOWNGRADE_AT_PCT", "150")
    with pytest.raises(ValidationError, match="downgrade_at_pct"):
        Settings()


def test_given_an_idle_timeout_above_the_total_provider_timeout_when_loaded_then_refused():
    with pytest.raises(ValidationError, match="provider_idle_timeout_seconds"):
        Settings(ledger_table="led", calls_table="cal", provider_idle_timeout_seconds=900)
