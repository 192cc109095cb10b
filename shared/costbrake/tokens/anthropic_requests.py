"""Input-token bounds of Anthropic Messages request bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costbrake.tokens.images import anthropic_image_tokens, base64_dimensions
from costbrake.tokens.input_estimate import InputEstimate, RequestParts, UnsizableInput, as_list, json_text

_ANTHROPIC_TOKENS_PER_MESSAGE = 5
_ANTHROPIC_REQUEST_OVERHEAD = 10
_ANTHROPIC_TOKENS_PER_TOOL = 12
# The tool-use system prompt Anthropic adds when tools are present (346 tokens on Claude 4 models), and
# what an Anthropic-defined tool (bash 245, text editor 700, computer use 735 + its system prompt) adds.
_ANTHROPIC_TOOL_SYSTEM_PROMPT = 400
_ANTHROPIC_SERVER_TOOL_TOKENS = 1_500
_ANTHROPIC_TOKENS_PER_BLOCK = 3


def estimate_anthropic_input_tokens(body: Mapping[str, Any]) -> InputEstimate:
    """Input tokens of a Messages request body, bounded from above."""
    parts = RequestParts(texts=[], fixed=_ANTHROPIC_REQUEST_OVERHEAD)
    _anthropic_content(body.get("system"), parts)
    for message in as_list(body.get("messages")):
        if not isinstance(message, Mapping):
            parts.texts.append(json_text(message))
            continue
        parts.fixed += _ANTHROPIC_TOKENS_PER_MESSAGE
        _anthropic_content(message.get("content"), parts)
    tools = as_list(body.get("tools"))
    if tools:
        parts.fixed += _ANTHROPIC_TOOL_SYSTEM_PROMPT + _ANTHROPIC_TOKENS_PER_TOOL * len(tools)
        parts.texts.extend(json_text(tool) for tool in tools)
        parts.fixed += _ANTHROPIC_SERVER_TOOL_TOKENS * sum(
            1 for tool in tools if isinstance(tool, Mapping) and tool.get("type") not in (None, "custom")
        )
    return parts.estimate("anthropic")


# Blocks whose tokens are their text (or JSON); any other type is unsized.
_ANTHROPIC_TEXT_BLOCKS = frozenset({"server_tool_use", "redacted_thinking", "mcp_tool_use"})


def _anthropic_content(content: Any, parts: RequestParts) -> None:
    """Adds ``content`` (a string or content blocks) to ``parts``."""
    if content is None:
        return
    if isinstance(content, str):
        parts.texts.append(content)
        return
    for block in as_list(content):
        if not isinstance(block, Mapping):
            parts.texts.append(json_text(block))
            continue
        parts.fixed += _ANTHROPIC_TOKENS_PER_BLOCK
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.texts.append(block["text"])
        elif kind == "image":
            source = block.get("source")
            data = source.get("data") if isinstance(source, Mapping) and source.get("type") == "base64" else None
            parts.fixed += anthropic_image_tokens(base64_dimensions(data) if isinstance(data, str) else None)
        elif kind == "tool_use":
            parts.texts.append(str(block.get("name") or ""))
            parts.texts.append(json_text(block.get("input")))
        elif kind == "tool_result":
            _anthropic_content(block.get("content"), parts)
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            parts.texts.append(block["thinking"])
        elif kind == "document":
            _anthropic_document(block, parts)
        elif kind == "search_result":
            parts.texts.append(str(block.get("title") or ""))
            parts.texts.append(str(block.get("source") or ""))
            _anthropic_content(block.get("content"), parts)
        elif kind in _ANTHROPIC_TEXT_BLOCKS:
            parts.texts.append(json_text(block))
        else:
            # Server-tool results carry encrypted content, whose tokens are not its bytes; new block types
            # are not sized either.
            parts.texts.append(json_text(block))
            parts.add_unsized(str(kind or "unknown"))


def _anthropic_document(block: Mapping[str, Any], parts: RequestParts) -> None:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise UnsizableInput("a document without a source cannot be sized before the call")
    kind = source.get("type")
    for key in ("title", "context"):
        if isinstance(block.get(key), str):
            parts.texts.append(block[key])
    if kind == "text" and isinstance(source.get("data"), str):
        parts.texts.append(source["data"])
    elif kind == "content":
        _anthropic_content(source.get("content"), parts)
    elif kind == "base64" and isinstance(source.get("data"), str):
        parts.add_unsized("document")  # a PDF's tokens (text + an image per page) are not its bytes
    else:
        raise UnsizableInput(f"a {kind or 'referenced'} document cannot be sized before the call; send it inline")
