"""The gateway function's wiring in template.yaml agrees with costbrake.config.Settings and the API contract."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import pytest
from costbrake.config import Settings
from template_refs import resolve

ENV_PREFIX = "COSTBRAKE_"
# Settings field -> the template parameter that sets it.
TIMEOUT_PARAMETERS = {
    "provider_idle_timeout_seconds": "ProviderIdleTimeoutSeconds",
    "provider_timeout_seconds": "ProviderTimeoutSeconds",
    "integration_timeout_seconds": "IntegrationTimeoutSeconds",
    "lambda_timeout_seconds": "GatewayTimeoutSeconds",
    "reservation_ttl_seconds": "ReservationTtlSeconds",
}


@pytest.fixture
def gateway(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["GatewayFunction"]["Properties"]
    return properties


def function_env(template: dict[str, Any], function: str) -> dict[str, Any]:
    """A function's environment as deployed: SAM merges the Globals' variables under the function's own."""
    global_variables = template["Globals"]["Function"]["Environment"]["Variables"]
    own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    return {**global_variables, **own}


def functions(template: dict[str, Any]) -> list[str]:
    return [name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]


def settings_from(variables: dict[str, Any], template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a function loads them at cold start, from its resolved environment and nothing else."""
    for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, resolve(value, template))
    return Settings()  # type: ignore[call-arg]


@pytest.fixture
def gateway_env(template: dict[str, Any]) -> dict[str, Any]:
    return function_env(template, "GatewayFunction")


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
    parameters = template["Parameters"]

    settings = settings_from(gateway_env, template, monkeypatch)

    assert settings.ledger_table == "LedgerTable"
    assert settings.calls_table == "CallsTable"
    assert settings.global_month_usd == Decimal(str(parameters["MonthlyBudgetUsd"]["Default"]))
    for field, parameter in TIMEOUT_PARAMETERS.items():
        assert getattr(settings, field) == parameters[parameter]["Default"], field
    assert settings.provider_secret_arn == (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + parameters["ProviderKeySecretName"]["Default"]
    )


def test_given_timeout_parameters_then_their_defaults_are_the_settings_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]

    for field, parameter in TIMEOUT_PARAMETERS.items():
        assert parameters[parameter]["Default"] == Settings.model_fields[field].default, parameter


def test_given_every_function_when_its_settings_load_with_the_defaults_then_all_time_limits_are_set_and_nest(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for function in functions(template):
        variables = function_env(template, function)
        expected = {f"{ENV_PREFIX}{field.upper()}": {"Ref": p} for field, p in TIMEOUT_PARAMETERS.items()}

        assert {name: variables.get(name) for name in expected} == expected, function
        settings_from(variables, template, monkeypatch)  # the nesting validator passes in every function


def test_given_timeout_parameters_then_their_bounds_fit_the_services_limits(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    lambda_timeout = resolve(template["Resources"]["GatewayFunction"]["Properties"]["Timeout"], template)

    assert parameters["IntegrationTimeoutSeconds"]["MaxValue"] == 900  # REST response streaming: 15 minutes
    assert parameters["GatewayTimeoutSeconds"]["MaxValue"] == 900  # Lambda's maximum
    assert parameters["ProviderIdleTimeoutSeconds"]["MaxValue"] < 300  # streamed responses' idle timeout (regional)
    assert parameters["ProviderTimeoutSeconds"]["MaxValue"] < 900
    # The Lambda outlives the integration: API Gateway gives up first, never the function mid-settle.
    assert int(lambda_timeout) >= int(parameters["IntegrationTimeoutSeconds"]["Default"])
    assert template["Resources"]["GatewayFunction"]["Properties"]["Timeout"] == {"Ref": "GatewayTimeoutSeconds"}


def test_given_timeout_parameter_descriptions_then_each_names_the_limits_it_must_nest_with(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    neighbours = {
        "ProviderIdleTimeoutSeconds": {"ProviderTimeoutSeconds"},
        "ProviderTimeoutSeconds": {"ProviderIdleTimeoutSeconds", "IntegrationTimeoutSeconds", "GatewayTimeoutSeconds"},
        "IntegrationTimeoutSeconds": {"ProviderTimeoutSeconds", "ReservationTtlSeconds"},
        "GatewayTimeoutSeconds": {"ProviderTimeoutSeconds", "ReservationTtlSeconds"},
        "ReservationTtlSeconds": {"GatewayTimeoutSeconds", "IntegrationTimeoutSeconds"},
    }

    for parameter, names in neighbours.items():
        description = parameters[parameter]["Description"]
        assert all(name in description for name in names), parameter


def test_given_the_default_limits_when_one_no_longer_nests_then_every_function_refuses_to_start(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sweeper used to get the reservation TTL alone: a TTL below the Lambda timeout now fails everywhere alike.
    ttl = {**template["Parameters"]["ReservationTtlSeconds"], "Default": 30}
    short_ttl = {**template, "Parameters": {**template["Parameters"], "ReservationTtlSeconds": ttl}}

    for function in functions(template):
        with pytest.raises(ValueError, match="reservation_ttl_seconds"):
            settings_from(function_env(template, function), short_ttl, monkeypatch)


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
