"""Bad input gets a provider-shaped 4xx, and nothing is spent, held or sent upstream."""

from __future__ import annotations

import json
import uuid

import httpx2 as httpx
import pytest
from costbrake.operations.features import default_feature
from costbrake.records import OverCap
from helpers import assert_nothing_spent_or_held

OK_MESSAGES = [{"role": "user", "content": "hi"}]


def openai_body(**fields):
    return json.dumps({"model": "gpt-4o-mini", "messages": OK_MESSAGES, "max_tokens": 10, **fields}).encode()


def anthropic_body(**fields):
    return json.dumps({"model": "claude-haiku-4-5", "messages": OK_MESSAGES, "max_tokens": 10, **fields}).encode()


HUGE = "lorem " * 60_000
CASES = [
    ("malformed json", "/v1/chat/completions", b'{"model": "gpt-4o-mini", "messages": [', 400),
    ("body not an object", "/v1/chat/completions", b"[1, 2]", 400),
    ("max_tokens as string", "/v1/chat/completions", openai_body(max_tokens="100"), 400),
    ("max_tokens as bool", "/v1/messages", anthropic_body(max_tokens=True), 400),
    ("negative max_tokens", "/v1/chat/completions", openai_body(max_tokens=-5), 400),
    ("zero max_tokens", "/v1/messages", anthropic_body(max_tokens=0), 400),
    ("unknown model", "/v1/chat/completions", openai_body(model="gpt-99-ultra"), 400),
    ("model of the other provider", "/v1/messages", anthropic_body(model="gpt-4o"), 400),
    ("messages missing", "/v1/messages", json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5}).encode(), 400),
    ("messages empty", "/v1/chat/completions", openai_body(messages=[]), 400),
    ("stream not a bool", "/v1/chat/completions", openai_body(stream="yes"), 400),
    (
        "oversized prompt",
        "/v1/messages",
        anthropic_body(messages=[{"role": "user", "content": "lorem " * 60_000}]),
        413,
    ),
    ("empty body", "/v1/chat/completions", b"", 400),
    # Bodies that would crash the gateway after reserving if they got that far (issue 8, row 10).
    ("lone surrogate", "/v1/chat/completions", openai_body().replace(b'"hi"', b'"\\ud800 hi"'), 400),
    ("lone surrogate in a key", "/v1/messages", anthropic_body().replace(b'"model"', b'"\\udfff":1,"model"'), 400),
    ("invalid UTF-8", "/v1/messages", anthropic_body().replace(b'"hi"', b'"\xff\xfe hi"'), 400),
    ("nesting past 64 levels", "/v1/chat/completions", openai_body(metadata=json.loads("[" * 100 + "]" * 100)), 400),
    ("nesting past the recursion limit", "/v1/messages", b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    # What cannot be priced is refused, not under-reserved.
    ("unknown service tier", "/v1/chat/completions", openai_body(service_tier="platinum"), 400),
    ("audio output", "/v1/chat/completions", openai_body(modalities=["text", "audio"], audio={"voice": "alloy"}), 400),
    (
        "unpriced server tool",
        "/v1/messages",
        anthropic_body(tools=[{"type": "code_execution_20250522", "name": "code_execution"}]),
        400,
    ),
]


@pytest.mark.parametrize(("case", "path", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_given_bad_request_when_posted_then_provider_shaped_4xx_and_nothing_spent(
    stack, make_key, mock, user_id, case, path, body, status
):
    key = make_key(user_id)
    upstream_before = len(mock.requests)

    response = httpx.post(f"{stack.url}{path}", content=body, headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == status, response.text
    payload = response.json()
    if path == "/v1/messages":
        assert payload["type"] == "error" and payload["error"]["message"]
    else:
        assert payload["error"]["message"] and payload["error"]["type"]
    assert len(mock.requests) == upstream_before
    assert_nothing_spent_or_held(stack, user_id)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer cb-not-a-real-key"}, 401), ({"x-api-key": "wrong"}, 401)],
    ids=["missing key", "unknown bearer key", "unknown x-api-key"],
)
def test_given_bad_key_when_calling_then_401_and_nothing_sent(stack, mock, headers, status):
    upstream_before = len(mock.requests)

    response = httpx.post(f"{stack.url}/v1/messages", content=anthropic_body(), headers=headers)

    assert response.status_code == status
    assert response.json()["error"]["type"] == "authentication_error"
    assert len(mock.requests) == upstream_before


def test_given_user_key_naming_another_user_then_403_and_nothing_spent(stack, make_key, mock, user_id):
    key = make_key(user_id)

    response = httpx.post(
        f"{stack.url}/v1/chat/completions", content=openai_body(user="someone-else"), headers={"x-api-key": key}
    )

    assert response.status_code == 403
    assert_nothing_spent_or_held(stack, user_id)
    assert_nothing_spent_or_held(stack, "someone-else")


def test_given_absurd_max_tokens_on_clamping_feature_then_upstream_gets_the_cap(stack, make_key, mock, user_id):
    key = make_key(user_id)  # the default feature clamps to 4096

    response = httpx.post(
        f"{stack.url}/v1/chat/completions", content=openai_body(max_tokens=10**9), headers={"x-api-key": key}
    )

    assert response.status_code == 200
    assert mock.requests[-1].body["max_tokens"] == stack.settings.default_max_output_tokens


def test_given_absurd_max_tokens_on_refusing_feature_then_400_and_nothing_spent(stack, make_key, mock, user_id):
    feature = default_feature(stack.settings, f"strict-{uuid.uuid4().hex[:6]}")
    stack.stores.admin.put_feature(
        type(feature)(**{**feature.__dict__, "over_cap": OverCap.REFUSE}), "pytest", stack.clock.now()
    )
    key = make_key(user_id, feature=feature.name)
    stack.gateway.forget_cached()  # the gateway reads the change now, not after its cache time
    upstream_before = len(mock.requests)

    response = httpx.post(
        f"{stack.url}/v1/messages", content=anthropic_body(max_tokens=10**9), headers={"x-api-key": key}
    )

    assert response.status_code == 400 and "cap" in response.json()["error"]["message"]
    assert len(mock.requests) == upstream_before
    assert_nothing_spent_or_held(stack, user_id)


def test_given_no_max_tokens_then_feature_default_is_sent(stack, make_key, mock, user_id):
    body = json.dumps({"model": "claude-haiku-4-5", "messages": OK_MESSAGES}).encode()

    response = httpx.post(f"{stack.url}/v1/messages", content=body, headers={"x-api-key": make_key(user_id)})

    assert response.status_code == 200
    assert mock.requests[-1].body["max_tokens"] == stack.settings.default_max_output_tokens


def test_given_unknown_fields_when_forwarded_then_they_survive(stack, make_key, mock, user_id):
    body = openai_body(temperature=0.2, logit_bias={"42": 3}, x_custom={"keep": ["me"]})

    response = httpx.post(f"{stack.url}/v1/chat/completions", content=body, headers={"x-api-key": make_key(user_id)})

    assert response.status_code == 200
    sent = mock.requests[-1].body
    assert (sent["temperature"], sent["logit_bias"], sent["x_custom"]) == (0.2, {"42": 3}, {"keep": ["me"]})
