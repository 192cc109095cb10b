"""Request validation for the mock provider: refuse what the real APIs refuse, in their words.

Sources (checked for this module): the request types of the official SDKs pinned here (``openai`` 3.x
``types/chat/completion_create_params.py`` and the ``chat_completion_*_message_param.py`` files;
``anthropic`` 2.x ``types/message_create_params.py``, ``content_block_param.py``,
``beta/beta_content_block_param.py``, ``thinking_config_enabled_param.py``), the Claude API errors page
(platform.claude.com/docs/en/api/errors: ``{"type": "error", "error": {"type", "message"}, "request_id"}``)
and the 400 bodies the real APIs return, as quoted in public issue threads (OpenAI:
``{"error": {"message", "type": "invalid_request_error", "param", "code"}}`` with codes such as
``missing_required_parameter``, ``invalid_type``, ``invalid_value``, ``empty_array``,
``integer_below_min_value``, ``unsupported_parameter``).

The rule is "refuse exactly what the real API refuses and no more": where the mock is unsure it accepts,
and each such choice is commented. Unknown top-level fields are accepted by both dialects here (the real
OpenAI API refuses them with ``unknown_parameter``; the gateway's tests forward unknown fields on purpose).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Dialect = Literal["openai", "anthropic"]


@dataclass(frozen=True)
class Problem:
    """Why a request is refused: the message, and for OpenAI the ``param`` and ``code`` fields."""

    message: str
    param: str | None = None
    code: str | None = None


def invalid_request(dialect: Dialect, headers: Mapping[str, str], body: Any) -> Problem | None:
    if not isinstance(body, Mapping):
        return Problem("We could not parse the JSON body of your request: expected a JSON object.")
    if dialect == "openai":
        return _openai(body)
    if not headers.get("anthropic-version"):
        return Problem("anthropic-version: header is required")
    return _anthropic(body)


# --- OpenAI chat completions ---

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


def _openai(body: Mapping[str, Any]) -> Problem | None:
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


def _missing(param: str) -> Problem:
    return Problem(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str, value: Any) -> Problem:
    return Problem(
        f"Invalid type for '{param}': expected {expected}, but got {_json_kind(value)} instead.", param, "invalid_type"
    )


def _empty_array(param: str) -> Problem:
    return Problem(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        param,
        "empty_array",
    )


def _bad_value(param: str, value: Any, allowed: Sequence[str]) -> Problem:
    quoted = [f"'{option}'" for option in allowed]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    return Problem(f"Invalid value: '{value}'. Supported values are: {listed}.", param, "invalid_value")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --- Anthropic messages ---

# ContentBlockParam of the SDK plus the beta union (accepted whatever anthropic-beta header is sent: unsure
# which header unlocks which block, so the mock does not refuse any block type the API knows).
_ANTHROPIC_BLOCKS = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "tool_result",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
        "advisor_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "compaction",
        "tool_addition",
        "tool_removal",
        "mcp_tool_listing",
        "fallback",
    }
)
_ANTHROPIC_BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "image": ("source",),
    "document": ("source",),
    "tool_use": ("id", "name", "input"),
    "tool_result": ("tool_use_id",),
    "thinking": ("thinking", "signature"),
    "redacted_thinking": ("data",),
}
# The SDK's MessageParam now has a "system" role (string or text blocks); the API also merges consecutive
# same-role turns and no longer requires a user turn first, so neither alternation nor order is checked.
_ANTHROPIC_ROLES = ("user", "assistant", "system")
_ANTHROPIC_TIERS = ("auto", "standard_only")
_THINKING_TYPES = ("enabled", "disabled", "adaptive")
MIN_THINKING_BUDGET = 1024
MAX_CACHE_BREAKPOINTS = 4
MAX_METADATA_USER_ID = 256


def _anthropic(body: Mapping[str, Any]) -> Problem | None:
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return Problem(f"{name}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        return Problem("model: Input should be a valid string")
    max_tokens = body["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return Problem("max_tokens: Input should be a valid integer")
    if max_tokens < 0:  # 0 is allowed: it pre-warms the prompt cache without generating (SDK docstring)
        return Problem("max_tokens: Input should be greater than or equal to 0")
    problem = _anthropic_messages(body["messages"])
    problem = problem or _anthropic_system(body.get("system"))
    problem = problem or _anthropic_thinking(body.get("thinking"), max_tokens)
    problem = problem or _anthropic_tools(body.get("tools"))
    problem = problem or _anthropic_metadata(body.get("metadata"))
    if problem is not None:
        return problem
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return Problem("stream: Input should be a valid boolean")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return Problem(f"{name}: Input should be a valid number")
        if value is not None and not 0 <= value <= 1:
            return Problem(f"{name}: range: 0..1")
    if "service_tier" in body and body["service_tier"] not in _ANTHROPIC_TIERS:
        return Problem("service_tier: Input should be 'auto' or 'standard_only'")
    return _anthropic_cache_controls(body)


def _anthropic_messages(messages: Any) -> Problem | None:
    if not isinstance(messages, list):
        return Problem("messages: Input should be a valid list")
    if not messages:
        return Problem("messages: at least one message is required")
    for index, message in enumerate(messages):
        path = f"messages.{index}"
        if not isinstance(message, Mapping):
            return Problem(f"{path}: Input should be a valid dictionary or object to extract fields from")
        for name in ("role", "content"):
            if name not in message:
                return Problem(f"{path}.{name}: Field required")
        role, content = message["role"], message["content"]
        if role not in _ANTHROPIC_ROLES:
            return Problem(f"{path}.role: Input should be 'user', 'assistant' or 'system'")
        problem = _anthropic_content(f"{path}.content", content, text_only=role == "system")
        if problem is not None:
            return problem
        final_assistant = role == "assistant" and index == len(messages) - 1
        if not content and not final_assistant:
            return Problem(
                f"{path}: all messages must have non-empty content except for the optional final assistant message"
            )
    return None


def _anthropic_content(path: str, content: Any, *, text_only: bool) -> Problem | None:
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return Problem(f"{path}: Input should be a valid list")
    for index, block in enumerate(content):
        block_path = f"{path}.{index}"
        if not isinstance(block, Mapping):
            return Problem(f"{block_path}: Input should be a valid dictionary or object to extract fields from")
        kind = block.get("type")
        if "type" not in block:
            return Problem(f"{block_path}: Unable to extract tag using discriminator 'type'")
        if text_only and kind != "text":
            return Problem(f"{block_path}.type: Input should be 'text'")
        if kind not in _ANTHROPIC_BLOCKS:
            expected = ", ".join(f"'{name}'" for name in sorted(_ANTHROPIC_BLOCKS))
            return Problem(
                f"{block_path}: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                + expected
            )
        for name in _ANTHROPIC_BLOCK_FIELDS.get(str(kind), ()):
            if name not in block:
                return Problem(f"{block_path}.{kind}.{name}: Field required")
        if kind == "text":
            if not isinstance(block["text"], str):
                return Problem(f"{block_path}.text.text: Input should be a valid string")
            if not block["text"]:
                return Problem("messages: text content blocks must be non-empty")
    return None


def _anthropic_system(system: Any) -> Problem | None:
    if system is None or isinstance(system, str):
        return None
    problem = _anthropic_content("system", system, text_only=True)
    return (
        Problem(problem.message.replace("Input should be a valid list", "Input should be a valid string"))
        if problem
        else None
    )


def _anthropic_thinking(thinking: Any, max_tokens: int) -> Problem | None:
    if thinking is None:
        return None
    if not isinstance(thinking, Mapping) or thinking.get("type") not in _THINKING_TYPES:
        return Problem(
            "thinking: Input tag found using 'type' does not match any of the expected tags: "
            "'enabled', 'disabled', 'adaptive'"
        )
    if thinking["type"] != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if budget is None:
        return Problem("thinking.enabled.budget_tokens: Field required")
    if isinstance(budget, bool) or not isinstance(budget, int):
        return Problem("thinking.enabled.budget_tokens: Input should be a valid integer")
    if budget < MIN_THINKING_BUDGET:
        return Problem(
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
        )
    if max_tokens <= budget:
        return Problem(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
        )
    return None


def _anthropic_tools(tools: Any) -> Problem | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return Problem("tools: Input should be a valid list")
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            return Problem(f"tools.{index}: Input should be a valid dictionary or object to extract fields from")
        kind = tool.get("type")
        if kind in (None, "custom"):
            for name in ("name", "input_schema"):
                if name not in tool:
                    return Problem(f"tools.{index}.custom.{name}: Field required")
            continue
        max_uses = tool.get("max_uses")
        if max_uses is not None and (isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1):
            return Problem(f"tools.{index}.{kind}.max_uses: Input should be greater than 0")
    return None


def _anthropic_metadata(metadata: Any) -> Problem | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        return Problem("metadata: Input should be a valid dictionary or object to extract fields from")
    user_id = metadata.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        return Problem("metadata.user_id: Input should be a valid string")
    if user_id is not None and len(user_id) > MAX_METADATA_USER_ID:
        return Problem(f"metadata.user_id: String should have at most {MAX_METADATA_USER_ID} characters")
    return None


def _anthropic_cache_controls(body: Mapping[str, Any]) -> Problem | None:
    found = 0
    for block in cacheable_blocks(body):
        control = block.get("cache_control")
        if control is None:
            continue
        found += 1
        if not isinstance(control, Mapping) or control.get("type") != "ephemeral":
            return Problem("cache_control.type: Input should be 'ephemeral'")
        if control.get("ttl", "5m") not in ("5m", "1h"):
            return Problem("cache_control.ttl: Input should be '5m' or '1h'")
    if isinstance(body.get("cache_control"), Mapping):
        found += 1  # the automatic breakpoint takes a slot too
    if found > MAX_CACHE_BREAKPOINTS:
        return Problem(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
        )
    return None


def cacheable_blocks(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every tool, system block and message content block, in prompt order (tools, system, messages)."""
    blocks: list[Mapping[str, Any]] = []
    for source in (body.get("tools"), body.get("system")):
        if isinstance(source, list):
            blocks += [item for item in source if isinstance(item, Mapping)]
    for message in body.get("messages") or ():
        if isinstance(message, Mapping) and isinstance(message.get("content"), list):
            blocks += [item for item in message["content"] if isinstance(item, Mapping)]
    return blocks
