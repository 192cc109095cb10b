"""Every sample event in events/ (for `sam local invoke`) runs through the gateway handler."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from costbrake.config import load_settings
from costbrake.dal.rollups import RollupStore
from costbrake.gateway import api
from costbrake.gateway.service import Gateway, ProviderKeys
from costbrake.local.lambda_gateway import LambdaContext
from costbrake.local.mock_provider import MockProvider
from costbrake.operations import create_key, seed_defaults
from costbrake.pricing import PriceTable

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
API_EVENTS = [  # events/ also holds a stream batch and a schedule event for the pipeline functions
    path for path in sorted(EVENTS_DIR.glob("*.json")) if "httpMethod" in json.loads(path.read_text())
]
SAMPLE_KEY = "cb-sample-events-key"


@pytest.fixture
def handler_gateway(ledger, settings, clock) -> Iterator[MockProvider]:
    with MockProvider() as mock:
        local = settings.model_copy(update={"openai_base_url": mock.base_url, "anthropic_base_url": mock.base_url})
        seed_defaults(ledger, clock, local)
        create_key(ledger, clock, user_id="sample-user", tier="free", service=False, feature="chat", secret=SAMPLE_KEY)
        keys = ProviderKeys(local)
        keys._keys = {"openai": "mock", "anthropic": "mock"}
        api.use_gateway(Gateway(local, ledger, PriceTable.default(), clock, keys))
        yield mock
        api.use_gateway(None)


def test_given_events_folder_then_every_route_has_a_sample():
    assert {(json.loads(p.read_text())["httpMethod"], json.loads(p.read_text())["path"]) for p in API_EVENTS} == {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/messages"),
        ("GET", "/v1/models"),
        ("GET", "/v1/budget"),
    }


@pytest.mark.parametrize("event_file", API_EVENTS, ids=[p.stem for p in API_EVENTS])
def test_given_sample_event_when_handled_then_200_with_the_routes_answer(handler_gateway, event_file):
    event = json.loads(event_file.read_text())
    context = LambdaContext("costbrake-gateway", "sample", 40, time.monotonic())

    response = api.lambda_handler(event, context)

    assert response["statusCode"] == 200, response["body"]
    headers = {name: values[-1] for name, values in response["multiValueHeaders"].items()}
    body = response["body"]
    if json.loads(event["body"] or "{}").get("stream"):
        assert headers["Content-Type"].startswith("text/event-stream")
        assert body.startswith(("data: ", "event: "))
    else:
        assert json.loads(body)
    if event["httpMethod"] == "POST":
        assert headers["x-costbrake-cost-usd"]
        assert len(handler_gateway.requests) == 1


@pytest.fixture
def function_app(ledger, settings, monkeypatch):
    """Loads functions/<name>/app.py as Lambda would, with the deployment's environment pointing at moto."""
    monkeypatch.setenv("COSTBRAKE_LEDGER_TABLE", settings.ledger_table)
    monkeypatch.setenv("COSTBRAKE_CALLS_TABLE", settings.calls_table)
    for endpoint in ("COSTBRAKE_DYNAMODB_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(endpoint, raising=False)
    load_settings.cache_clear()

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"{name}_app", EVENTS_DIR.parent / "functions" / name / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    yield load
    load_settings.cache_clear()


def test_given_sample_stream_batch_when_aggregated_then_no_failures_and_rollups_written(function_app, settings):
    event = json.loads((EVENTS_DIR / "stream_batch.json").read_text())
    context = LambdaContext("costbrake-aggregator", "sample", 60, time.monotonic())

    response = function_app("aggregator").lambda_handler(event, context)

    assert response == {"batchItemFailures": []}
    image = event["Records"][0]["dynamodb"]["NewImage"]
    day = "d#" + image["timestamp"]["S"][:10]
    totals = RollupStore.connect(settings).rollups_for("global", [day])
    assert totals[day].calls == len(event["Records"])


def test_given_sample_schedule_event_when_swept_then_the_sweeper_answers(function_app):
    event = json.loads((EVENTS_DIR / "schedule.json").read_text())
    context = LambdaContext("costbrake-sweeper", "sample", 60, time.monotonic())

    assert function_app("sweeper").lambda_handler(event, context) == {"released": 0, "released_usd": "0"}
