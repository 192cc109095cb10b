"""The gateway function's wiring in template.yaml agrees with costbrake.config.Settings and the API contract."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import pytest
from costbrake.config import Settings
from template_refs import resolve

ENV_PREFIX = "COSTBRAKE_"


@pytest.fixture
def gateway(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["GatewayFunction"]["Properties"]
    return properties


@pytest.fixture
def gateway_env(gateway: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = gateway["Environment"]["Variables"]
    return variables


def test_given_settings_when_compared_with_gateway_env_then_every_required_field_is_set(
    gateway_env: dict[str, Any],
) -> None:
    required = [name for name, field in Settings.model_fields.items() if field.is_required()]

    assert required  # the tables at least
    missing = [name for name in required if f"{ENV_PREFIX}{name.upper()}" not in gateway_env]
    assert not missing


def test_given_gateway_env_when_compared_with_settings_then_every_costbrake_variable_names_a_field(
    gateway_env: dict[str, Any],
) -> None:
    costbrake_variables = [name for name in gateway_env if name.startswith(ENV_PREFIX)]

    unknown = [name for name in costbrake_variables if name[len(ENV_PREFIX) :].lower() not in Settings.model_fields]
    assert not unknown


def test_given_parameter_defaults_when_gateway_settings_load_then_they_validate_and_carry_the_defaults(
    gateway_env: dict[str, Any], template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in gateway_env.items():
        monkeypatch.setenv(name, resolve(value, template))
    parameters = template["Parameters"]

    settings = Settings()

    assert settings.ledger_table == "LedgerTable"
    assert settings.calls_table == "CallsTable"
    assert settings.global_month_usd == Decimal(str(parameters["MonthlyBudgetUsd"]["Default"]))
    assert settings.provider_timeout_seconds == parameters["ProviderTimeoutSeconds"]["Default"]
    assert settings.integration_timeout_seconds == parameters["IntegrationTimeoutSeconds"]["Default"]
    assert settings.lambda_timeout_seconds == parameters["GatewayTimeoutSeconds"]["Default"]
    assert settings.reservation_ttl_seconds == parameters["ReservationTtlSeconds"]["Default"]
    assert settings.provider_secret_arn == (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + parameters["ProviderKeySecretName"]["Default"]
    )


def test_given_gateway_events_when_read_then_api_routes_and_integration_timeouts_match_the_contract(
    gateway: dict[str, Any], template: dict[str, Any]
) -> None:
    integration_seconds = int(template["Parameters"]["IntegrationTimeoutSeconds"]["Default"])
    events = [event["Properties"] for event in gateway["Events"].values() if event["Type"] == "Api"]

    routes = {(event["Method"].upper(), event["Path"]) for event in events}

    assert routes == {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/messages"),
        ("GET", "/v1/models"),
        ("GET", "/v1/budget"),
    }
    for event in events:
        assert event["RestApiId"] == {"Ref": "CostbrakeApi"}
        assert int(resolve(event["TimeoutInMillis"], template)) == integration_seconds * 1000


def test_given_outputs_when_resolved_then_openai_base_ends_in_v1_and_anthropic_base_does_not(
    template: dict[str, Any],
) -> None:
    outputs = template["Outputs"]
    stage = template["Resources"]["CostbrakeApi"]["Properties"]["StageName"]

    openai_base = resolve(outputs["ApiUrl"]["Value"], template)
    anthropic_base = resolve(outputs["AnthropicBaseUrl"]["Value"], template)

    # The SDKs append /chat/completions (OpenAI) and /v1/messages (Anthropic) to their base URLs.
    assert openai_base.endswith(f"/{stage}/v1")
    assert anthropic_base + "/v1" == openai_base


def test_given_gateway_policies_when_read_then_no_wildcard_action_resource_or_scan_is_granted(
    gateway: dict[str, Any],
) -> None:
    statements = [statement for policy in gateway["Policies"] for statement in policy["Statement"]]

    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert statement["Effect"] == "Allow"
        assert not [action for action in actions if "*" in action or action == "dynamodb:Scan"]
        assert "*" not in resources
