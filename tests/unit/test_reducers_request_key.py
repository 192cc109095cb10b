"""The exact cache's key and which requests may be cached."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from costbrake.providers.base import CHAT_COMPLETIONS, COUNT_TOKENS, EMBEDDINGS, MESSAGES, RESPONSES
from costbrake.reducers.request_key import (
    CacheRequest,
    InvalidCacheHeader,
    cache_request,
    canonical_json,
    exact_eligibility,
    request_key,
)
from hypothesis import given
from hypothesis import strategies as st

CHAT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
    "temperature": 0,
    "max_tokens": 50,
}


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=12,
)


@given(extra=st.dictionaries(st.sampled_from(["seed", "top_p", "stop", "n", "tools"]), json_values), seed=st.integers())
def test_given_any_body_when_its_keys_are_reordered_then_the_request_key_is_the_same(extra, seed):
    body = {**CHAT, **extra}

    assert request_key(CHAT_COMPLETIONS, body) == request_key(CHAT_COMPLETIONS, _shuffled(body, random.Random(seed)))


@given(
    user=st.text(max_size=20),
    stream=st.booleans(),
    tier=st.sampled_from(["auto", "default", "flex", "priority"]),
    metadata=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_given_a_body_when_only_user_stream_metadata_or_tier_differ_then_the_request_key_is_the_same(
    user, stream, tier, metadata
):
    varied = {
        **CHAT,
        "user": user,
        "stream": stream,
        "stream_options": {"include_usage": True},
        "service_tier": tier,
        "metadata": metadata,
    }

    assert request_key(CHAT_COMPLETIONS, varied) == request_key(CHAT_COMPLETIONS, CHAT)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o"},
        {"temperature": 0.5},
        {"top_p": 0.9},
        {"max_tokens": 51},
        {"seed": 7},
        {"stop": ["\n"]},
        {"n": 2},
        {"response_format": {"type": "json_object"}},
        {"tool_choice": "none"},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"reasoning_effort": "low"},
        {"messages": [{"role": "user", "content": "What is 2+3?"}]},
        {"some_future_parameter": True},
    ],
)
def test_given_a_parameter_that_changes_the_answer_when_it_differs_then_the_request_key_differs(change):
    assert request_key(CHAT_COMPLETIONS, {**CHAT, **change}) != request_key(CHAT_COMPLETIONS, CHAT)


def test_given_the_same_body_when_sent_to_another_api_then_the_request_key_differs():
    assert request_key(CHAT_COMPLETIONS, CHAT) != request_key(RESPONSES, CHAT)


def test_given_anthropic_beta_header_when_it_differs_then_the_key_differs_but_other_headers_do_not_count():
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}

    plain = request_key(MESSAGES, body, {"X-Request-Id": "a"})

    assert plain == request_key(MESSAGES, body, {"x-request-id": "b"})
    assert plain != request_key(MESSAGES, body, {"Anthropic-Beta": "context-1m-2025-08-07"})


def test_given_integral_float_and_int_when_canonicalised_then_they_are_one_number():
    assert canonical_json({"temperature": 0.0, "b": [1.0, 2.5]}) == canonical_json({"b": [1, 2.5], "temperature": 0})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_given_the_key_then_it_is_a_sha256_hex_digest():
    key = request_key(CHAT_COMPLETIONS, CHAT)

    assert len(key) == 64 and int(key, 16) >= 0
    assert request_key(CHAT_COMPLETIONS, copy.deepcopy(CHAT)) == key


# ---- eligibility -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, CacheRequest.DEFAULT),
        ("", CacheRequest.DEFAULT),
        (" Allow ", CacheRequest.ALLOW),
        ("bypass", CacheRequest.BYPASS),
        ("no-store", CacheRequest.BYPASS),
    ],
)
def test_given_cache_header_when_read_then_it_is_understood(header, expected):
    assert cache_request(header) is expected


def test_given_unknown_cache_header_when_read_then_it_is_refused():
    with pytest.raises(InvalidCacheHeader, match="allow"):
        cache_request("please")


def test_given_temperature_zero_when_judged_then_it_is_cacheable():
    assert exact_eligibility(CHAT_COMPLETIONS, CHAT, CacheRequest.DEFAULT).cacheable


@pytest.mark.parametrize("temperature", [None, 0.7, 1, False])
def test_given_a_sampled_request_when_judged_without_the_header_then_it_is_not_cacheable(temperature):
    body = {key: value for key, value in CHAT.items() if key != "temperature"}
    if temperature is not None:
        body["temperature"] = temperature

    verdict = exact_eligibility(CHAT_COMPLETIONS, body, CacheRequest.DEFAULT)

    assert not verdict.cacheable and "allow" in verdict.reason
    assert exact_eligibility(CHAT_COMPLETIONS, body, CacheRequest.ALLOW).cacheable


def test_given_bypass_header_when_judged_then_even_a_deterministic_request_is_not_cached():
    assert not exact_eligibility(CHAT_COMPLETIONS, CHAT, CacheRequest.BYPASS).cacheable


@pytest.mark.parametrize(
    ("api", "body"),
    [
        (RESPONSES, {"model": "gpt-5", "input": "hi", "temperature": 0, "conversation": "conv_1"}),
        (RESPONSES, {"model": "gpt-5", "input": "hi", "temperature": 0, "background": True}),
        (MESSAGES, {"model": "claude-haiku-4-5", "messages": [], "temperature": 0, "container": "c1"}),
        (MESSAGES, {"model": "claude-haiku-4-5", "messages": [], "mcp_servers": [{"url": "x"}]}),
        (COUNT_TOKENS, {"model": "claude-haiku-4-5", "messages": []}),
    ],
)
def test_given_state_outside_the_body_when_judged_then_it_is_never_cached_even_when_allowed(api, body):
    assert not exact_eligibility(api, body, CacheRequest.ALLOW).cacheable


def test_given_server_side_tools_when_judged_then_only_the_header_caches_them():
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 10,
        "temperature": 0,
        "messages": [{"role": "user", "content": "news?"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }

    assert not exact_eligibility(MESSAGES, body, CacheRequest.DEFAULT).cacheable
    assert exact_eligibility(MESSAGES, body, CacheRequest.ALLOW).cacheable
    client_tools = {**body, "tools": [{"name": "lookup", "input_schema": {"type": "object"}}]}
    assert exact_eligibility(MESSAGES, client_tools, CacheRequest.DEFAULT).cacheable


def test_given_embeddings_when_judged_then_they_are_cacheable_without_temperature():
    assert exact_eligibility(
        EMBEDDINGS, {"model": "text-embedding-3-small", "input": "x"}, CacheRequest.DEFAULT
    ).cacheable
