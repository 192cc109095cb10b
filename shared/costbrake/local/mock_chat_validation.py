"""Validation of OpenAI chat completions requests for the mock provider (see ``mock_validation``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from costbrake.local.mock_problems import Problem, _bad_value, _empty_array, _missing, _wrong_type

_OPENAI_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
# Content part types each role accepts (the SDK's message param types).
_OPENAI_PARTS: dict[str, tuple[str, ...]] = {
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
}
_OPENAI_PART_FIELD = {"text": "text", "image_url": "image_url", "input_audio": "input_audio", "file": "file"}
_OPENAI_TIERS = ("auto", "default", "flex", "scale", "priority", "fast")
# Reasoning models refuse max_tokens ("Unsupported parameter: 'max_tokens' is not supported with this model.
# Use 'max_completion_tokens' instead."). gpt-5-chat-* is a non-reasoning chat model: unsure, so accepted.
_REASONING_MODEL = re.compile(r"^(o1|o3|o4)(-|$)|^gpt-5(?!-chat)")
# (name, minimum, maximum, integer only)
_OPENAI_NUMBERS: tuple[tuple[str, float | None, float | None, bool], ...] = (
    ("max_tokens", 1, None, True),
    ("max_completion_tokens", 1, None, True),
    ("n", 1, 128, True),
    ("temperature", 0, 2, False),
    ("top_p", 0, 1, False),
    ("presence_penalty", -2, 2, False),
    ("frequency_penalty", -2, 2, False),
    ("top_logprobs", 0, 20, True),
    ("seed", None, None, True),
)


def invalid_chat_request(body: Mapping[str, Any]) -> Problem | None:
    for name in ("model", "messages"):
        if name not in body:
            return _missing(name)
    if not isinstance(body["model"], str):
        return _wrong_type("model", "a string", body["model"])
    messages = body["messages"]
    if not isinstance(messages, list):
        return _wrong_type("messages", "an array", messages)
    if not messages:
        return _empty_array("messages")
    for index, message in enumerate(messages):
        problem = _openai_message(f"messages[{index}]", message, messages[:index])
        if problem is not None:
            return problem
    for name, low, high, integral in _OPENAI_NUMBERS:
        problem = _openai_number(name, body.get(name), low, high, integral=integral)
        if problem is not None:
            return problem
    if body.get("max_tokens") is not None and _REASONING_MODEL.match(body["model"]):
        return Problem(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    return stream_and_tier_problem(body, _OPENAI_TIERS)


def stream_and_tier_problem(body: Mapping[str, Any], tiers: Sequence[str]) -> Problem | None:
    """OpenAI's checks of ``stream``, ``stream_options`` and ``service_tier`` (chat and Responses alike)."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return _wrong_type("stream", "a boolean", stream)
    if body.get("stream_options") is not None and stream is not True:
        return Problem("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    tier = body.get("service_tier")
    if tier is not None and (not isinstance(tier, str) or tier not in tiers):
        return _bad_value("service_tier", tier, tiers)
    return None


def _openai_message(path: str, message: Any, before: Sequence[Any]) -> Problem | None:
    if not isinstance(message, Mapping):
        return _wrong_type(path, "an object", message)
    if "role" not in message:
        return _missing(f"{path}.role")
    role = message["role"]
    if role not in _OPENAI_ROLES:
        return _bad_value(f"{path}.role", role, _OPENAI_ROLES)
    content = message.get("content")
    if role == "function":  # deprecated; content is required but may be null, name is required
        if "name" not in message:
            return _missing(f"{path}.name")
        if "content" not in message:
            return _missing(f"{path}.content")
        return (
            None if content is None or isinstance(content, str) else _wrong_type(f"{path}.content", "a string", content)
        )
    if role == "tool":
        if "tool_call_id" not in message:
            return _missing(f"{path}.tool_call_id")
        if not isinstance(message["tool_call_id"], str):
            return _wrong_type(f"{path}.tool_call_id", "a string", message["tool_call_id"])
        if not _answers_tool_calls(before):
            return Problem(
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
                "'tool_calls'.",
                f"{path}.role",
            )
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return None  # "Required unless tool_calls or function_call is specified."
        if "content" not in message:
            return _missing(f"{path}.content")
        return _wrong_type(f"{path}.content", "one of a string or array of objects", content)
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return _wrong_type(f"{path}.content", "one of a string or array of objects", content)
    if not content:
        return _empty_array(f"{path}.content")
    allowed = _OPENAI_PARTS[role]
    for index, part in enumerate(content):
        part_path = f"{path}.content[{index}]"
        if not isinstance(part, Mapping):
            return _wrong_type(part_path, "an object", part)
        if "type" not in part:
            return _missing(f"{part_path}.type")
        if part["type"] not in allowed:
            return _bad_value(f"{part_path}.type", part["type"], allowed)
        field = _OPENAI_PART_FIELD.get(part["type"], "refusal")
        if field not in part:
            return _missing(f"{part_path}.{field}")
        expected = "a string" if field in ("text", "refusal") else "an object"
        if not isinstance(part[field], str if field in ("text", "refusal") else Mapping):
            return _wrong_type(f"{part_path}.{field}", expected, part[field])
        if field == "image_url" and not isinstance(part[field].get("url"), str):
            return _missing(f"{part_path}.image_url.url")
    return None


def _answers_tool_calls(before: Sequence[Any]) -> bool:
    """A tool message must follow (through other tool messages) an assistant message with tool_calls."""
    for message in reversed(before):
        if isinstance(message, Mapping) and message.get("role") == "tool":
            continue
        return isinstance(message, Mapping) and message.get("role") == "assistant" and bool(message.get("tool_calls"))
    return False


def _openai_number(name: str, value: Any, low: float | None, high: float | None, *, integral: bool) -> Problem | None:
    if value is None:
        return None
    kind = "integer" if integral else "decimal"
    if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
        return _wrong_type(name, "an integer" if integral else "a number", value)
    if low is not None and value < low:
        return Problem(
            f"Invalid '{name}': {kind} below minimum value. Expected a value >= {low}, but got {value} instead.",
            name,
            f"{kind}_below_min_value",
        )
    if high is not None and value > high:
        return Problem(
            f"Invalid '{name}': {kind} above maximum value. Expected a value <= {high}, but got {value} instead.",
            name,
            f"{kind}_above_max_value",
        )
    return None
