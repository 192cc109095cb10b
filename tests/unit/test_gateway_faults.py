"""No crash holds money, and no fault is free (issue 8, items 4 and 7): every way a call can fail after its
reservation settles it in the same request — refunded when nothing was sent, charged the worst case when the
provider may have generated."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from costbrake.config import Settings
from costbrake.errors import ProviderKeyUnavailable
from costbrake.gateway.asgi import build_app
from costbrake.gateway.provider_keys import ProviderKeys
from costbrake.gateway.service import Gateway
from costbrake.local.app_client import AppClient
from costbrake.providers import OpenAIChatAdapter
from costbrake.wiring import Stores
from moto import mock_aws
from support.eventually import eventually

SECRET = "cb-unit-faults"
BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100})
HEADERS = {"authorization": f"Bearer {SECRET}"}


@pytest.fixture
def gateway(make_gateway, mock_settings: Settings) -> Gateway:
    return make_gateway(mock_settings, secret=SECRET, user_id="fault-user")


def call(gateway: Gateway):
    """One chat completion through the gateway's app, in-process."""
    with AppClient(build_app(gateway)) as client:
        return client.request("POST", "/v1/chat/completions", HEADERS, BODY.encode())


def only_record(stores: Stores):
    (record,) = stores.calls.scan_calls()
    assert not stores.reservations.open_reservations()
    return record


@pytest.mark.parametrize("after_sending", [False, True], ids=["before sending", "after sending"])
def test_given_a_crash_after_reserving_when_called_then_settled_in_the_request_and_a_502_says_do_not_retry(
    gateway, stores, monkeypatch, after_sending
):
    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in the gateway")

    # Before sending: building the upstream headers; after: reading the provider's (billed) answer.
    monkeypatch.setattr(OpenAIChatAdapter, "result" if after_sending else "upstream_headers", crash)

    response = call(gateway)

    record = only_record(stores)
    assert record.status == "error" and "RuntimeError" in (record.error or "")
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "api_error"
    if after_sending:
        assert record.cost_usd == record.reserved_usd > 0 and record.usage_estimated
        assert response.headers["x-should-retry"] == "false"
    else:
        assert record.cost_usd == 0
        assert "x-should-retry" not in response.headers


def test_given_a_provider_that_times_out_after_the_request_was_sent_then_charged_the_worst_case(
    stores, make_gateway, mock_settings, mock
):
    fast = mock_settings.model_copy(update={"provider_timeout_seconds": 0.5, "provider_idle_timeout_seconds": 0.3})
    gateway = make_gateway(fast, secret=SECRET, user_id="fault-user")
    mock.delay_next(1.0)

    response = call(gateway)

    assert response.status_code == 504 and response.headers["x-should-retry"] == "false"
    record = only_record(stores)
    assert record.cost_usd == record.reserved_usd > 0
    eventually(lambda: len(mock.billed), until=lambda n: n == 1, what="the provider's bill")  # it did generate


def test_given_a_refused_connection_then_refunded_because_nothing_reached_the_provider(
    stores, make_gateway, mock_settings
):
    closed = mock_settings.model_copy(update={"openai_base_url": "http://127.0.0.1:9"})
    gateway = make_gateway(closed, secret=SECRET, user_id="fault-user")

    response = call(gateway)

    assert response.status_code == 502 and "x-should-retry" not in response.headers
    assert only_record(stores).cost_usd == 0


def test_given_no_provider_key_then_503_before_anything_is_reserved_or_recorded(stores, make_gateway, settings):
    gateway = make_gateway(settings, secret=SECRET, user_id="fault-user")

    response = call(gateway)

    assert response.status_code == 503 and response.json()["error"]["code"] == "provider_key_unavailable"
    assert not stores.calls.scan_calls() and not stores.reservations.open_reservations()


def test_given_a_provider_secret_that_cannot_be_read_then_503_without_the_secrets_name_or_value_leaking(settings):
    with mock_aws():
        keys = ProviderKeys(settings.model_copy(update={"provider_secret_arn": "costbrake/provider-keys"}))

        with pytest.raises(ProviderKeyUnavailable) as refused:
            keys.key_for("openai")

    assert refused.value.status == 503 and "ResourceNotFoundException" in refused.value.message


def test_given_a_rotated_secret_when_the_refresh_time_passes_then_the_new_key_is_used(settings):
    now = [0.0]
    with mock_aws():
        import boto3

        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="costbrake/provider-keys", SecretString=json.dumps({"openai_api_key": "old"}))
        keys = ProviderKeys(
            settings.model_copy(update={"provider_secret_arn": "costbrake/provider-keys"}), monotonic=lambda: now[0]
        )
        assert keys.key_for("openai") == "old"
        secrets.put_secret_value(SecretId="costbrake/provider-keys", SecretString=json.dumps({"openai_api_key": "new"}))

        still = keys.key_for("openai")
        now[0] += 301
        rotated = keys.key_for("openai")

    assert (still, rotated) == ("old", "new")


def test_given_a_call_that_settles_above_its_reservation_then_the_metric_the_alarm_watches_is_emitted(
    call_record, capsys
):
    from costbrake.gateway import telemetry

    telemetry.call_settled(call_record(cost_usd=Decimal("0.5"), reserved_usd=Decimal("0.4")))
    telemetry.call_settled(call_record(cost_usd=Decimal("0.3"), reserved_usd=Decimal("0.4")))

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    flagged = [document.get("SettledAboveReserved") for document in documents if "Calls" in document]
    assert flagged == [[1.0], None]
