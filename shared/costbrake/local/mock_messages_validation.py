"""Validation of Anthropic Messages requests for the mock provider (see ``mock_validation``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costbrake.local.mock_problems import Problem

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


def invalid_messages_request(body: Mapping[str, Any]) -> Problem | None:
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
