"""Parse and validate client request bodies; the original body is forwarded, never a re-serialised model."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from costbrake.errors import InputTooLarge, InvalidRequest


class _Body(BaseModel):
    # Strict: "100" is not a number of tokens and true is not 1. Unknown fields are the provider's business.
    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1, max_length=200)
    stream: bool = False


class _Request(_Body):
    messages: list[dict[str, Any]] = Field(min_length=1)


class OpenAIChatRequest(_Request):
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=16)
    user: str | None = Field(default=None, max_length=256)


class AnthropicMetadata(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    user_id: str | None = Field(default=None, max_length=256)


class AnthropicMessagesRequest(_Request):
    max_tokens: int | None = Field(default=None, ge=1)
    system: str | list[dict[str, Any]] | None = None
    metadata: AnthropicMetadata | None = None

    @field_validator("messages")
    @classmethod
    def _roles(cls, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for message in messages:
            if message.get("role") not in ("user", "assistant"):
                raise ValueError("each message needs a role of 'user' or 'assistant'")
        return messages


class OpenAIResponsesRequest(_Body):
    """POST /v1/responses. ``input`` may be absent when a previous response, conversation or prompt supplies it."""

    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=0)
    tools: list[dict[str, Any]] | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    background: bool | None = None
    user: str | None = Field(default=None, max_length=256)


class OpenAIEmbeddingsRequest(_Body):
    """POST /v1/embeddings: one text, texts, a token array or token arrays."""

    input: str | list[str] | list[int] | list[list[int]]
    user: str | None = Field(default=None, max_length=256)


class AnthropicCountTokensRequest(AnthropicMessagesRequest):
    """POST /v1/messages/count_tokens: a Messages body without max_tokens."""


ApiRequest = OpenAIChatRequest | OpenAIResponsesRequest | OpenAIEmbeddingsRequest | AnthropicMessagesRequest

# Deeper than any real request; json.loads would hit the interpreter's recursion limit (a crash, not a 400) far
# below what a body of max_body_bytes can nest.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json_body(raw: bytes | str | None, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, refused (400/413) before anything is reserved when it could not be
    forwarded: not UTF-8, not JSON, nested past ``MAX_JSON_DEPTH``, or holding a lone surrogate (``"\\ud800"``
    parses, but no UTF-8 encoder can send it upstream)."""
    if raw is None or len(raw) == 0:
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    if len(raw) > max_bytes:
        raise InputTooLarge(f"The request body is {len(raw)} bytes; the limit is {max_bytes}.")
    if _nesting_depth(raw) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise InvalidRequest(f"The request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    _refuse_lone_surrogates(body)
    return body


def _nesting_depth(raw: bytes | str) -> int:
    """Bracket depth outside strings, without parsing (so the check itself cannot recurse)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if "[" not in text and "{" not in text:
        return 0
    # Strings are dropped first: brackets inside them do not nest.
    structure = _JSON_STRING.sub("", text)
    depth = deepest = 0
    for bracket in _BRACKET.findall(structure):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _refuse_lone_surrogates(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise InvalidRequest("The request body holds a lone UTF-16 surrogate (e.g. \\ud800), not text.")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


R = TypeVar("R", bound="_Body")


def validate(model: type[R], body: dict[str, Any]) -> R:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(
            f"Invalid request: {where}: {first['msg']} ({error.error_count()} problem(s))", param=where
        ) from error
