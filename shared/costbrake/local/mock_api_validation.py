"""Request validation for the mock provider's other APIs: OpenAI Responses and embeddings, Anthropic count_tokens.

Sources: the request types of the pinned SDKs (``openai`` 3.x ``types/responses/response_create_params.py``,
``response_input_item_param.py``, ``embedding_create_params.py``; ``anthropic`` 2.x
``types/message_count_tokens_params.py``) and the API references (Responses: ``max_output_tokens`` of at least
16, ``previous_response_id`` and ``conversation`` exclusive; embeddings: at most 2,048 inputs of at most 8,192
tokens, no empty string, ``dimensions`` only on ``text-embedding-3-*``). As in ``mock_validation``, the rule is
"refuse what the real API refuses and no more": where the mock is unsure it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costbrake.local.mock_chat_validation import _OPENAI_TIERS, _openai_number, stream_and_tier_problem
from costbrake.local.mock_messages_validation import (
    MIN_THINKING_BUDGET,
    _anthropic_messages,
    _anthropic_system,
    _anthropic_thinking,
    _anthropic_tools,
)
from costbrake.local.mock_problems import Problem, _bad_value, _empty_array, _missing, _wrong_type

MIN_RESPONSES_OUTPUT_TOKENS = 16
MAX_EMBEDDING_INPUTS = 2048
MAX_EMBEDDING_INPUT_TOKENS = 8192
# Default (and largest) dimensions of the embedding models; ada-002 takes no ``dimensions``.
EMBEDDING_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
_RESPONSES_ROLES = ("user", "assistant", "system", "developer")
_RESPONSES_INPUT_PARTS = ("input_text", "input_image", "input_file", "input_audio")
_RESPONSES_OUTPUT_PARTS = ("output_text", "refusal")
_ENCODING_FORMATS = ("float", "base64")
_RESPONSES_TIERS = (*_OPENAI_TIERS, "ultrafast")
# (name, minimum, maximum, integer only)
_RESPONSES_NUMBERS: tuple[tuple[str, float | None, float | None, bool], ...] = (
    ("max_output_tokens", MIN_RESPONSES_OUTPUT_TOKENS, None, True),
    ("max_tool_calls", 0, None, True),  # unsure of the minimum: only negatives are refused
    ("temperature", 0, 2, False),
    ("top_p", 0, 1, False),
    ("top_logprobs", 0, 20, True),
)


def invalid_responses_request(body: Mapping[str, Any]) -> Problem | None:
    if "model" not in body:
        return _missing("model")
    if not isinstance(body["model"], str):
        return _wrong_type("model", "a string", body["model"])
    context = [name for name in ("previous_response_id", "conversation") if body.get(name) is not None]
    if len(context) == 2:
        return Problem(
            "Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' or "
            "'conversation'.",
            None,
            "mutually_exclusive_parameters",
        )
    items = body.get("input")
    if items is None and not context and body.get("prompt") is None:
        return _missing("input")
    if items is not None and not isinstance(items, str | list):
        return _wrong_type("input", "one of a string or array of input items", items)
    for index, item in enumerate(items if isinstance(items, list) else ()):
        problem = _responses_item(f"input[{index}]", item)
        if problem is not None:
            return problem
    for name, low, high, integral in _RESPONSES_NUMBERS:
        problem = _openai_number(name, body.get(name), low, high, integral=integral)
        if problem is not None:
            return problem
    for name in ("instructions", "previous_response_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            return _wrong_type(name, "a string", body[name])
    problem = _responses_tools(body.get("tools"))
    if problem is not None:
        return problem
    return stream_and_tier_problem(body, _RESPONSES_TIERS)


def _responses_item(path: str, item: Any) -> Problem | None:
    if not isinstance(item, Mapping):
        return _wrong_type(path, "an object", item)
    kind = item.get("type", "message" if "role" in item else None)
    if kind is None:
        return _missing(f"{path}.type")
    if kind == "message":
        return _responses_message(path, item)
    required = {
        "function_call": ("call_id", "name", "arguments"),
        "function_call_output": ("call_id", "output"),
        "item_reference": ("id",),
    }.get(str(kind), ())
    for name in required:
        if name not in item:
            return _missing(f"{path}.{name}")
    return None  # other item types (reasoning, built-in tool calls): accepted


def _responses_message(path: str, item: Mapping[str, Any]) -> Problem | None:
    if "role" not in item:
        return _missing(f"{path}.role")
    if item["role"] not in _RESPONSES_ROLES:
        return _bad_value(f"{path}.role", item["role"], _RESPONSES_ROLES)
    if "content" not in item:
        return _missing(f"{path}.content")
    content = item["content"]
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return _wrong_type(f"{path}.content", "one of a string or array of objects", content)
    allowed = _RESPONSES_OUTPUT_PARTS if item["role"] == "assistant" else _RESPONSES_INPUT_PARTS
    for index, part in enumerate(content):
        part_path = f"{path}.content[{index}]"
        if not isinstance(part, Mapping):
            return _wrong_type(part_path, "an object", part)
        if part.get("type") not in allowed:
            return _bad_value(f"{part_path}.type", part.get("type"), allowed)
        field = {"input_text": "text", "output_text": "text", "refusal": "refusal"}.get(part["type"])
        if field is not None and not isinstance(part.get(field), str):
            return _missing(f"{part_path}.{field}") if field not in part else _wrong_type(part_path, "a string", part)
        if part["type"] == "input_image" and part.get("image_url") is None and part.get("file_id") is None:
            return Problem(
                f"Invalid '{part_path}': one of 'image_url' or 'file_id' must be provided.", part_path, "invalid_value"
            )
    return None


def _responses_tools(tools: Any) -> Problem | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _wrong_type("tools", "an array", tools)
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            return _wrong_type(f"tools[{index}]", "an object", tool)
        if "type" not in tool:
            return _missing(f"tools[{index}].type")
        if tool["type"] == "function" and "name" not in tool:
            return _missing(f"tools[{index}].name")
    return None


def invalid_embeddings_request(body: Mapping[str, Any], token_counts: list[int] | None) -> Problem | None:
    """``token_counts``: the tokens of each input (None when ``input`` is not a valid shape, checked here)."""
    for name in ("model", "input"):
        if name not in body:
            return _missing(name)
    model = body["model"]
    if not isinstance(model, str):
        return _wrong_type("model", "a string", model)
    if "embedding" not in model:
        return Problem(f"The model '{model}' does not support embeddings.", "model", "invalid_value")
    problem = _embedding_input(body["input"])
    if problem is not None or token_counts is None:
        return problem or _wrong_type("input", "a string or an array", body["input"])
    longest = max(token_counts, default=0)
    if longest > MAX_EMBEDDING_INPUT_TOKENS:
        return Problem(
            f"This model's maximum context length is {MAX_EMBEDDING_INPUT_TOKENS} tokens, however you requested "
            f"{longest} tokens in your input. Please reduce your input.",
            "input",
            "context_length_exceeded",
        )
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if model not in EMBEDDING_DIMENSIONS or model == "text-embedding-ada-002":
            return Problem("This model does not support specifying dimensions.", "dimensions", "invalid_value")
        problem = _openai_number("dimensions", dimensions, 1, EMBEDDING_DIMENSIONS[model], integral=True)
        if problem is not None:
            return problem
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in _ENCODING_FORMATS:
        return _bad_value("encoding_format", encoding, _ENCODING_FORMATS)
    return None


def _embedding_input(value: Any) -> Problem | None:
    if isinstance(value, str):
        return None if value else Problem("'$.input' is invalid. Please check the API reference.", "input")
    if not isinstance(value, list):
        return _wrong_type("input", "a string or an array", value)
    if not value:
        return _empty_array("input")
    if len(value) > MAX_EMBEDDING_INPUTS:
        return Problem(
            f"Invalid 'input': maximum length {MAX_EMBEDDING_INPUTS}, but got {len(value)}.", "input", "invalid_value"
        )
    for item in value:
        valid = (
            (isinstance(item, str) and item)
            or (isinstance(item, int) and not isinstance(item, bool) and item >= 0)
            or (isinstance(item, list) and item and all(isinstance(t, int) and not isinstance(t, bool) for t in item))
        )
        if not valid:
            return Problem("'$.input' is invalid. Please check the API reference.", "input")
    return None


def invalid_count_tokens_request(headers: Mapping[str, str], body: Any) -> Problem | None:
    """A Messages body without max_tokens (count_tokens takes none)."""
    if not isinstance(body, Mapping):
        return Problem("We could not parse the JSON body of your request: expected a JSON object.")
    if not headers.get("anthropic-version"):
        return Problem("anthropic-version: header is required")
    for name in ("model", "messages"):
        if name not in body:
            return Problem(f"{name}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        return Problem("model: Input should be a valid string")
    return (
        _anthropic_messages(body["messages"])
        or _anthropic_system(body.get("system"))
        or _anthropic_thinking(body.get("thinking"), max_tokens=MIN_THINKING_BUDGET * 1024)
        or _anthropic_tools(body.get("tools"))
    )
