"""The mock provider's Responses, embeddings and count_tokens APIs: the official SDKs parse them, they refuse
what the real APIs refuse and bill deterministically."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import anthropic
import openai
import pytest
from costbrake.local.mock_provider import MockProvider
from costbrake.local.mock_responses import REASONING_TOKENS
from costbrake.local.mock_usage import WEB_SEARCH_RESULT_TOKENS
from support.raw_http import raw_post

QUESTION = "How much did the deep analysis feature cost last week?"
MESSAGES: Any = [{"role": "user", "content": QUESTION}]
TOOL: Any = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
def client(mock: MockProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock.base_url + "/v1", api_key="x", max_retries=0)


def test_given_a_response_when_created_plain_and_streamed_then_both_carry_the_same_usage_and_text(
    mock: MockProvider, client: openai.OpenAI
) -> None:
    plain = client.responses.create(model="gpt-4o", input=QUESTION, max_output_tokens=500)
    with client.responses.stream(model="gpt-4o", input=QUESTION, max_output_tokens=500) as stream:
        streamed = stream.get_final_response()

    assert plain.status == streamed.status == "completed"
    assert plain.output_text == streamed.output_text and "costbrake mock" in plain.output_text
    assert plain.usage is not None and streamed.usage is not None
    assert plain.usage.input_tokens == streamed.usage.input_tokens
    assert [billed.usage["input_tokens"] for billed in mock.billed] == [plain.usage.input_tokens] * 2


def test_given_max_output_tokens_below_the_answer_then_the_response_is_incomplete_at_the_cap(
    client: openai.OpenAI,
) -> None:
    response = client.responses.create(model="gpt-4o", input=QUESTION, max_output_tokens=16)

    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 16


def test_given_a_reasoning_model_then_reasoning_tokens_are_inside_the_output(client: openai.OpenAI) -> None:
    response = client.responses.create(model="o4-mini", input=QUESTION, max_output_tokens=1000)

    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == REASONING_TOKENS
    assert response.usage.output_tokens > REASONING_TOKENS
    assert response.output[0].type == "reasoning"


def test_given_a_function_tool_then_it_is_called_and_its_output_answered(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4.1", input=QUESTION, tools=[TOOL], max_output_tokens=100)
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"

    output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
    items: Any = [*MESSAGES, call.model_dump(exclude_none=True), output]
    second = client.responses.create(model="gpt-4.1", input=items, tools=[TOOL], max_output_tokens=100)

    assert second.output_text
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens


def test_given_a_web_search_tool_then_it_searches_up_to_max_tool_calls_and_bills_the_results(
    mock: MockProvider, client: openai.OpenAI
) -> None:
    plain = client.responses.create(model="gpt-4o", input=QUESTION, max_output_tokens=500)
    tools: Any = [{"type": "web_search"}]
    searched = client.responses.create(model="gpt-4o", input=QUESTION, tools=tools, max_tool_calls=2)

    assert sum(1 for item in searched.output if item.type == "web_search_call") == 2
    assert searched.usage is not None and plain.usage is not None
    assert searched.usage.input_tokens >= plain.usage.input_tokens + 2 * WEB_SEARCH_RESULT_TOKENS
    assert mock.billed[-1].usage["web_search_requests"] == 2


def test_given_a_previous_response_then_its_context_is_billed_and_an_unknown_one_is_refused(
    client: openai.OpenAI,
) -> None:
    first = client.responses.create(model="gpt-4o", input=QUESTION, max_output_tokens=500)
    second = client.responses.create(model="gpt-4o", previous_response_id=first.id, input="And then?")

    assert first.usage is not None and second.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    with pytest.raises(openai.BadRequestError, match="not found"):
        client.responses.create(model="gpt-4o", previous_response_id="resp_unknown", input="And then?")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o"}, "input"),
        ({"model": "gpt-4o", "input": "x", "max_output_tokens": 15}, "max_output_tokens"),
        ({"model": "gpt-4o", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "gpt-4o", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"model": "gpt-4o", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "gpt-4o", "input": "x", "service_tier": "cheap"}, "service_tier"),
        ({"model": "gpt-4o", "input": "x", "previous_response_id": "r", "conversation": "c"}, None),
    ],
)
def test_given_responses_requests_the_api_refuses_then_400_in_openais_shape(
    mock: MockProvider, body: dict[str, Any], param: str | None
) -> None:
    status, error = raw_post(mock.base_url, "/v1/responses", body, {"authorization": "Bearer k"})

    assert status == 400 and error["error"]["param"] == param
    assert not mock.billed


def test_given_texts_when_embedded_then_vectors_are_unit_length_deterministic_and_billed_per_token(
    mock: MockProvider, client: openai.OpenAI
) -> None:
    first = client.embeddings.create(model="text-embedding-3-small", input=["hello", "world"], dimensions=64)
    again = client.embeddings.create(model="text-embedding-3-small", input="hello", dimensions=64)

    assert [len(item.embedding) for item in first.data] == [64, 64]
    assert first.data[0].embedding == pytest.approx(again.data[0].embedding)
    assert math.isclose(sum(value * value for value in first.data[0].embedding), 1.0, rel_tol=1e-5)
    assert first.usage.prompt_tokens == 4  # ceil(5 / 4) + ceil(5 / 4)
    assert mock.billed[0].usage == {"prompt_tokens": 4, "total_tokens": 4}


def test_given_base64_encoding_then_the_vector_is_little_endian_float32(mock: MockProvider) -> None:
    body = {"model": "text-embedding-3-large", "input": [[1, 2, 3]], "encoding_format": "base64"}

    status, answer = raw_post(mock.base_url, "/v1/embeddings", body, {"authorization": "Bearer k"})

    raw = base64.b64decode(answer["data"][0]["embedding"])
    assert status == 200 and len(struct.unpack(f"<{len(raw) // 4}f", raw)) == 3072
    assert answer["usage"]["prompt_tokens"] == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "text-embedding-3-small"}, "input"),
        ({"model": "text-embedding-3-small", "input": ""}, "input"),
        ({"model": "text-embedding-3-small", "input": []}, "input"),
        ({"model": "text-embedding-3-small", "input": ["x"] * 2049}, "input"),
        ({"model": "text-embedding-3-small", "input": "x" * 40_000}, "input"),
        ({"model": "text-embedding-ada-002", "input": "x", "dimensions": 8}, "dimensions"),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": 4096}, "dimensions"),
        ({"model": "gpt-4o", "input": "x"}, "model"),
    ],
)
def test_given_embeddings_requests_the_api_refuses_then_400(
    mock: MockProvider, body: dict[str, Any], param: str
) -> None:
    status, error = raw_post(mock.base_url, "/v1/embeddings", body, {"authorization": "Bearer k"})

    assert status == 400 and error["error"]["param"] == param
    assert not mock.billed


def test_given_count_tokens_then_the_sdk_reads_the_count_and_nothing_is_billed(mock: MockProvider) -> None:
    client = anthropic.Anthropic(base_url=mock.base_url, api_key="x", max_retries=0)

    counted = client.messages.count_tokens(model="claude-haiku-4-5", messages=MESSAGES, system="Be brief.")
    created = client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES, system="Be brief.")

    assert counted.input_tokens == created.usage.input_tokens
    assert len(mock.billed) == 1


def test_given_count_tokens_without_messages_or_version_then_400_in_anthropics_shape(mock: MockProvider) -> None:
    missing, error = raw_post(
        mock.base_url,
        "/v1/messages/count_tokens",
        {"model": "m"},
        {"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    unversioned, _ = raw_post(
        mock.base_url, "/v1/messages/count_tokens", {"model": "m", "messages": MESSAGES}, {"x-api-key": "k"}
    )

    assert missing == unversioned == 400
    assert error["error"]["type"] == "invalid_request_error" and "messages" in error["error"]["message"]
