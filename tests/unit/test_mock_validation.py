"""The mock provider refuses what the real APIs refuse, with each provider's 400 error JSON, and no more."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from costbrake.local.mock_provider import MockProvider

OPENAI_HEADERS = {"authorization": "Bearer k", "content-type": "application/json"}
ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json"}
USER: Any = {"role": "user", "content": "What did the analysis feature cost?"}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProvider]:
    with MockProvider() as provider:
        yield provider


def post(mock: MockProvider, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    host, port = mock.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = OPENAI_HEADERS if path == "/v1/chat/completions" else ANTHROPIC_HEADERS
    try:
        connection.request("POST", path, body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        raw = response.read()
        is_json = response.getheader("content-type") == "application/json"
        return response.status, json.loads(raw) if is_json else {}
    finally:
        connection.close()


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [USER], **fields}


def messages(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 2048, "messages": [USER], **fields}


OPENAI_REFUSED = [
    ("model missing", {"messages": [USER]}, "model", "missing_required_parameter"),
    ("messages empty", chat(messages=[]), "messages", "empty_array"),
    ("messages not an array", chat(messages="hi"), "messages", "invalid_type"),
    ("message without role", chat(messages=[{"content": "hi"}]), "messages[0].role", "missing_required_parameter"),
    ("unknown role", chat(messages=[{"role": "robot", "content": "hi"}]), "messages[0].role", "invalid_value"),
    ("content as a number", chat(messages=[{"role": "user", "content": 42}]), "messages[0].content", "invalid_type"),
    ("content missing", chat(messages=[{"role": "user"}]), "messages[0].content", "missing_required_parameter"),
    (
        "content null for a user",
        chat(messages=[{"role": "user", "content": None}]),
        "messages[0].content",
        "invalid_type",
    ),
    ("empty content parts", chat(messages=[{"role": "user", "content": []}]), "messages[0].content", "empty_array"),
    (
        "unknown content part",
        chat(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]),
        "messages[0].content[0].type",
        "invalid_value",
    ),
    (
        "image in a system message",
        chat(messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, USER]),
        "messages[0].content[0].type",
        "invalid_value",
    ),
    (
        "text part without text",
        chat(messages=[{"role": "user", "content": [{"type": "text"}]}]),
        "messages[0].content[0].text",
        "missing_required_parameter",
    ),
    (
        "assistant without content or tool calls",
        chat(messages=[USER, {"role": "assistant"}]),
        "messages[1].content",
        "missing_required_parameter",
    ),
    (
        "tool message without tool_call_id",
        chat(messages=[USER, {"role": "tool", "content": "42"}]),
        "messages[1].tool_call_id",
        "missing_required_parameter",
    ),
    (
        "tool message answering nothing",
        chat(messages=[USER, {"role": "tool", "content": "42", "tool_call_id": "c1"}]),
        "messages[1].role",
        None,
    ),
    ("max_tokens zero", chat(max_tokens=0), "max_tokens", "integer_below_min_value"),
    ("max_tokens a string", chat(max_tokens="100"), "max_tokens", "invalid_type"),
    ("max_completion_tokens a float", chat(max_completion_tokens=1.5), "max_completion_tokens", "invalid_type"),
    ("max_tokens on a reasoning model", chat(model="o3-mini", max_tokens=100), "max_tokens", "unsupported_parameter"),
    ("max_tokens on gpt-5", chat(model="gpt-5-mini", max_tokens=100), "max_tokens", "unsupported_parameter"),
    ("n above 128", chat(n=129), "n", "integer_above_max_value"),
    ("n zero", chat(n=0), "n", "integer_below_min_value"),
    ("temperature above 2", chat(temperature=2.5), "temperature", "decimal_above_max_value"),
    ("temperature a string", chat(temperature="hot"), "temperature", "invalid_type"),
    ("stream not a boolean", chat(stream="yes"), "stream", "invalid_type"),
    ("stream_options without stream", chat(stream_options={"include_usage": True}), "stream_options", None),
    ("unknown service tier", chat(service_tier="gold"), "service_tier", "invalid_value"),
]


@pytest.mark.parametrize(("case", "body", "param", "code"), OPENAI_REFUSED, ids=[c[0] for c in OPENAI_REFUSED])
def test_given_a_request_openai_refuses_when_posted_then_400_in_openais_error_shape(
    mock: MockProvider, case: str, body: dict[str, Any], param: str, code: str | None
) -> None:
    status, answer = post(mock, "/v1/chat/completions", body)

    assert status == 400, case
    assert set(answer) == {"error"}
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert answer["error"]["type"] == "invalid_request_error"
    assert (answer["error"]["param"], answer["error"]["code"]) == (param, code)
    assert answer["error"]["message"]


TOOL_CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
OPENAI_ACCEPTED = [
    (
        "developer role and text parts",
        chat(messages=[{"role": "developer", "content": [{"type": "text", "text": "Be terse."}]}, USER]),
    ),
    (
        "assistant with tool calls and null content, then tool answers",
        chat(
            messages=[
                USER,
                {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
            ]
        ),
    ),
    (
        "assistant refusal part",
        chat(messages=[USER, {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}, USER]),
    ),
    (
        "user image, audio and file parts",
        chat(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
                        {"type": "file", "file": {"file_id": "file-1"}},
                    ],
                }
            ]
        ),
    ),
    ("deprecated function role", chat(messages=[USER, {"role": "function", "name": "f", "content": None}])),
    ("max_completion_tokens on a reasoning model", chat(model="o3", max_completion_tokens=100)),
    ("max_tokens on gpt-5-chat", chat(model="gpt-5-chat-latest", max_tokens=100)),
    ("nulls for optional numbers", chat(max_tokens=None, n=None, temperature=None, stream=None, stream_options=None)),
    ("stream with stream_options", chat(stream=True, stream_options={"include_usage": True})),
    ("flex tier", chat(service_tier="flex")),
    ("unknown top-level fields", chat(x_future_field=[1], metadata={"ticket": "T-1"})),
]


@pytest.mark.parametrize(("case", "body"), OPENAI_ACCEPTED, ids=[c[0] for c in OPENAI_ACCEPTED])
def test_given_a_request_openai_accepts_when_posted_then_200(
    mock: MockProvider, case: str, body: dict[str, Any]
) -> None:
    status, _answer = post(mock, "/v1/chat/completions", body)

    assert status == 200, case


def block(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


ANTHROPIC_REFUSED = [
    ("max_tokens missing", {"model": "claude-sonnet-4-5", "messages": [USER]}, "max_tokens: Field required"),
    ("max_tokens negative", messages(max_tokens=-1), "max_tokens"),
    ("max_tokens a bool", messages(max_tokens=True), "max_tokens"),
    ("messages empty", messages(messages=[]), "messages"),
    ("message without role", messages(messages=[{"content": "hi"}]), "messages.0.role: Field required"),
    ("tool role", messages(messages=[{"role": "tool", "content": "hi"}]), "messages.0.role"),
    ("content as a number", messages(messages=[{"role": "user", "content": 42}]), "messages.0.content"),
    (
        "unknown content block",
        messages(messages=[{"role": "user", "content": [block("video", url="x")]}]),
        "messages.0.content.0",
    ),
    ("block without type", messages(messages=[{"role": "user", "content": [{"text": "hi"}]}]), "messages.0.content.0"),
    (
        "empty text block",
        messages(messages=[{"role": "user", "content": [block("text", text="")]}]),
        "text content blocks must be non-empty",
    ),
    ("empty user content", messages(messages=[{"role": "user", "content": ""}]), "messages.0"),
    (
        "tool_use without input",
        messages(messages=[USER, {"role": "assistant", "content": [block("tool_use", id="t", name="f")]}]),
        "input",
    ),
    ("system as a number", messages(system=7), "system"),
    ("system with an image block", messages(system=[block("image", source={})]), "system.0.type"),
    ("thinking budget below 1024", messages(thinking={"type": "enabled", "budget_tokens": 512}), "1024"),
    (
        "thinking budget at max_tokens",
        messages(max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 2048}),
        "max_tokens",
    ),
    ("metadata.user_id over 256 characters", messages(metadata={"user_id": "u" * 257}), "metadata.user_id"),
    (
        "server tool max_uses zero",
        messages(tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 0}]),
        "max_uses",
    ),
    ("custom tool without input_schema", messages(tools=[{"name": "f"}]), "input_schema"),
    ("unknown service tier", messages(service_tier="priority"), "service_tier"),
    ("temperature above 1", messages(temperature=1.5), "temperature"),
    (
        "cache ttl of a day",
        messages(system=[block("text", text="s", cache_control={"type": "ephemeral", "ttl": "1d"})]),
        "ttl",
    ),
    (
        "five cache breakpoints",
        messages(system=[block("text", text=f"s{i}", cache_control={"type": "ephemeral"}) for i in range(5)]),
        "maximum of 4",
    ),
]


@pytest.mark.parametrize(("case", "body", "says"), ANTHROPIC_REFUSED, ids=[c[0] for c in ANTHROPIC_REFUSED])
def test_given_a_request_anthropic_refuses_when_posted_then_400_in_anthropics_error_shape(
    mock: MockProvider, case: str, body: dict[str, Any], says: str
) -> None:
    status, answer = post(mock, "/v1/messages", body)

    assert status == 400, case
    assert answer["type"] == "error" and answer["request_id"].startswith("req_")
    assert answer["error"]["type"] == "invalid_request_error"
    assert says in answer["error"]["message"]


ANTHROPIC_ACCEPTED = [
    ("consecutive user turns (merged by the API)", messages(messages=[USER, USER])),
    ("an assistant turn first", messages(messages=[{"role": "assistant", "content": "Hello."}, USER])),
    ("a system-role message", messages(messages=[{"role": "system", "content": "Be terse."}, USER])),
    ("an empty final assistant prefill", messages(messages=[USER, {"role": "assistant", "content": ""}])),
    ("max_tokens zero (cache pre-warming)", messages(max_tokens=0)),
    ("thinking budget 1024 below max_tokens", messages(thinking={"type": "enabled", "budget_tokens": 1024})),
    ("adaptive thinking", messages(thinking={"type": "adaptive"})),
    (
        "system as text blocks with a 1h breakpoint",
        messages(system=[block("text", text="s", cache_control={"type": "ephemeral", "ttl": "1h"})]),
    ),
    (
        "tool round trip blocks",
        messages(
            messages=[
                USER,
                {"role": "assistant", "content": [block("tool_use", id="t", name="f", input={})]},
                {"role": "user", "content": [block("tool_result", tool_use_id="t", content="42")]},
            ]
        ),
    ),
    (
        "server tool and beta blocks",
        messages(
            messages=[
                USER,
                {
                    "role": "assistant",
                    "content": [
                        block("server_tool_use", id="s", name="web_search", input={}),
                        block("web_search_tool_result", tool_use_id="s", content=[]),
                    ],
                },
                {"role": "user", "content": [block("search_result", source="s", title="t", content=[])]},
            ]
        ),
    ),
    ("metadata.user_id of 256 characters", messages(metadata={"user_id": "u" * 256})),
    (
        "web search tool with max_uses",
        messages(tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]),
    ),
    ("standard_only tier and unknown fields", messages(service_tier="standard_only", x_future=[1])),
]


@pytest.mark.parametrize(("case", "body"), ANTHROPIC_ACCEPTED, ids=[c[0] for c in ANTHROPIC_ACCEPTED])
def test_given_a_request_anthropic_accepts_when_posted_then_200(
    mock: MockProvider, case: str, body: dict[str, Any]
) -> None:
    status, _answer = post(mock, "/v1/messages", body)

    assert status == 200, case


def test_given_the_official_sdks_when_they_send_tools_images_and_streams_then_nothing_is_refused(
    mock: MockProvider,
) -> None:
    openai_client = openai.OpenAI(base_url=mock.base_url + "/v1", api_key="x", max_retries=0)
    anthropic_client = anthropic.Anthropic(base_url=mock.base_url, api_key="x", max_retries=0)
    tool: Any = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}

    openai_client.chat.completions.create(model="o4-mini", messages=[USER], tools=[tool], max_completion_tokens=50, n=2)
    list(
        openai_client.chat.completions.create(
            model="gpt-4o", messages=[USER], stream=True, stream_options={"include_usage": True}
        )
    )
    anthropic_client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=4000,
        system=[{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        thinking={"type": "enabled", "budget_tokens": 2000},
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
        metadata={"user_id": "u-1"},
        messages=[USER],
    )
    with anthropic_client.messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=[USER]) as stream:
        assert stream.get_final_message().usage.output_tokens == 10
