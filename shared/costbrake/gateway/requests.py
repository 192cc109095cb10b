"""Parse and validate client request bodies; the original body is forwarded, never a re-serialised model."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from costbrake.errors import InputTooLarge, InvalidRequest


class _Request(BaseModel):
    # Strict: "100" is not a number of tokens and true is not 1. Unknown fields are the provider's business.
    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1, max_length=200)
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False


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


def parse_json_body(raw: bytes | str | None, max_bytes: int) -> dict[str, Any]:
    if raw is None or len(raw) == 0:
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    if len(raw) > max_bytes:
        raise InputTooLarge(f"The request body is {len(raw)} bytes; the limit is {max_bytes}.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequest(f"The request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


R = TypeVar("R", bound="_Request")


def validate(model: type[R], body: dict[str, Any]) -> R:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(
            f"Invalid request: {where}: {first['msg']} ({error.error_count()} problem(s))", param=where
        ) from error
