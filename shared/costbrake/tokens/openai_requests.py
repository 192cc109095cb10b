"""Input-token bounds of OpenAI request bodies: chat completions, the Responses API, embeddings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costbrake.tokens.images import data_url_dimensions, openai_image_tokens
from costbrake.tokens.input_estimate import InputEstimate, RequestParts, UnsizableInput, as_list, json_text
from costbrake.tokens.text import estimate_text_tokens

# OpenAI's published accounting: 3 tokens frame each message, 1 more for a name, 3 prime the reply.
# Kept one higher per message for the roles and separators newer formats add.
_OPENAI_TOKENS_PER_MESSAGE = 4
_OPENAI_TOKENS_PER_NAME = 1
_OPENAI_REPLY_PRIMING = 3
_OPENAI_TOKENS_PER_TOOL = 12  # the namespace/type wrapper each function definition is rendered into
_OPENAI_TOOLS_PREAMBLE = 20
_OPENAI_TOKENS_PER_TOOL_CALL = 10
_OPENAI_RESPONSE_FORMAT_OVERHEAD = 20


def estimate_openai_input_tokens(body: Mapping[str, Any]) -> InputEstimate:
    """Input tokens of a chat.completions request body, bounded from above."""
    parts = RequestParts(texts=[], fixed=_OPENAI_REPLY_PRIMING)
    model = str(body.get("model") or "")
    for message in as_list(body.get("messages")):
        if not isinstance(message, Mapping):
            parts.texts.append(json_text(message))
            continue
        parts.fixed += _OPENAI_TOKENS_PER_MESSAGE
        parts.texts.append(str(message.get("role") or ""))
        if message.get("name"):
            parts.fixed += _OPENAI_TOKENS_PER_NAME
            parts.texts.append(str(message["name"]))
        _openai_content(message.get("content"), model, parts)
        for key in ("refusal", "tool_call_id"):
            if isinstance(message.get(key), str):
                parts.texts.append(message[key])
        calls = as_list(message.get("tool_calls"))
        if isinstance(message.get("function_call"), Mapping):
            calls.append({"function": message["function_call"]})
        for call in calls:
            # The whole call as JSON (id, type, name, arguments, punctuation): how it is rendered is not
            # published, and every part of it can reach the model as tokens.
            parts.fixed += _OPENAI_TOKENS_PER_TOOL_CALL
            parts.texts.append(json_text(call))
        if message.get("audio") is not None:  # a reference to an earlier audio reply: audio tokens
            parts.add_unsized("audio")
    tools = as_list(body.get("tools")) + as_list(body.get("functions"))
    if tools:
        parts.fixed += _OPENAI_TOOLS_PREAMBLE + _OPENAI_TOKENS_PER_TOOL * len(tools)
        parts.texts.extend(json_text(tool) for tool in tools)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") != "text":
        parts.fixed += _OPENAI_RESPONSE_FORMAT_OVERHEAD
        parts.texts.append(json_text(response_format))
    if isinstance(body.get("tool_choice"), Mapping):
        parts.texts.append(json_text(body["tool_choice"]))
    return parts.estimate("openai")


def _openai_content(content: Any, model: str, parts: RequestParts) -> None:
    if content is None:
        return
    if isinstance(content, str):
        parts.texts.append(content)
        return
    for part in as_list(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            parts.texts.append(part["refusal"])
        elif kind == "image_url":
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, Mapping) else None
            url = image.get("url") if isinstance(image, Mapping) else None
            parts.fixed += openai_image_tokens(model, detail, data_url_dimensions(url))
        elif kind == "file":
            file = part.get("file")
            if not isinstance(file, Mapping) or not isinstance(file.get("file_data"), str):
                raise UnsizableInput("a file referenced by id cannot be sized before the call; send file_data")
            parts.add_unsized("file")  # a PDF's tokens (text + an image per page) are not its bytes
        elif kind == "input_audio":
            parts.add_unsized("input_audio")
        else:
            parts.texts.append(json_text(part))
            parts.add_unsized(str(kind or "unknown"))


# Responses API: request fields that bring in context the body does not hold, and input item types whose
# tokens are their text (JSON); every other item type (reasoning, item references, built-in tool calls) is
# unsized.
_RESPONSES_CONTEXT = (
    ("previous_response_id", "previous response"),
    ("conversation", "conversation"),
    ("prompt", "prompt template"),
)
_RESPONSES_TEXT_ITEMS = frozenset({"custom_tool_call", "custom_tool_call_output"})
_RESPONSES_TEXT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}
_RESPONSES_IMAGE_DETAILS = frozenset({None, "auto", "low", "high"})


def estimate_openai_responses_input_tokens(body: Mapping[str, Any]) -> InputEstimate:
    """Input tokens of a Responses API request body, bounded from above: ``instructions``, ``input`` (text or
    items), ``tools``, ``text.format`` and ``tool_choice``. Context the body only refers to (a previous response,
    a conversation, a stored prompt template, item references, reasoning items) is unsized."""
    parts = RequestParts(texts=[], fixed=_OPENAI_REPLY_PRIMING)
    model = str(body.get("model") or "")
    for field, kind in _RESPONSES_CONTEXT:
        if body.get(field) not in (None, ""):
            parts.add_unsized(kind)
    if isinstance(body.get("instructions"), str):
        parts.fixed += _OPENAI_TOKENS_PER_MESSAGE
        parts.texts.append(body["instructions"])
    items = body.get("input")
    for item in [{"role": "user", "content": items}] if isinstance(items, str) else as_list(items):
        _responses_item(item, model, parts)
    tools = as_list(body.get("tools"))
    if tools:
        parts.fixed += _OPENAI_TOOLS_PREAMBLE + _OPENAI_TOKENS_PER_TOOL * len(tools)
        parts.texts.extend(json_text(tool) for tool in tools)
    text = body.get("text")
    response_format = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(response_format, Mapping) and response_format.get("type") != "text":
        parts.fixed += _OPENAI_RESPONSE_FORMAT_OVERHEAD
        parts.texts.append(json_text(response_format))
    if isinstance(body.get("tool_choice"), Mapping):
        parts.texts.append(json_text(body["tool_choice"]))
    return parts.estimate("openai")


def _responses_item(item: Any, model: str, parts: RequestParts) -> None:
    if not isinstance(item, Mapping):
        parts.texts.append(json_text(item))
        return
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        parts.fixed += _OPENAI_TOKENS_PER_MESSAGE
        parts.texts.append(str(item.get("role") or ""))
        _responses_content(item.get("content"), model, parts)
    elif kind == "function_call":
        parts.fixed += _OPENAI_TOKENS_PER_TOOL_CALL
        parts.texts.extend(str(item.get(field) or "") for field in ("call_id", "name", "arguments"))
    elif kind == "function_call_output":
        parts.fixed += _OPENAI_TOKENS_PER_MESSAGE
        parts.texts.append(str(item.get("call_id") or ""))
        _responses_content(item.get("output"), model, parts)
    elif kind in _RESPONSES_TEXT_ITEMS:
        parts.fixed += _OPENAI_TOKENS_PER_TOOL_CALL
        parts.texts.append(json_text(item))
    else:  # reasoning (its tokens are not its encrypted bytes), item_reference, built-in tool calls, unknown
        parts.texts.append(json_text(item))
        parts.add_unsized(str(kind or "unknown").replace("_", " "))


def _responses_content(content: Any, model: str, parts: RequestParts) -> None:
    if isinstance(content, str):
        parts.texts.append(content)
        return
    for part in as_list(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        field = _RESPONSES_TEXT_PARTS.get(str(kind))
        if field is not None and isinstance(part.get(field), str):
            parts.texts.append(part[field])
        elif kind == "input_image" and part.get("detail") in _RESPONSES_IMAGE_DETAILS:
            # A file_id or remote URL has no size here: the detail level's largest image.
            parts.fixed += openai_image_tokens(model, part.get("detail"), data_url_dimensions(part.get("image_url")))
        elif kind == "input_file":
            parts.add_unsized("file")  # a PDF's tokens (text + an image per page) are not its bytes
        else:
            parts.texts.append(json_text(part))
            parts.add_unsized(str(kind or "unknown").replace("_", " "))


def estimate_embeddings_input_tokens(value: Any) -> int:
    """Tokens of an embeddings ``input``, bounded from above: each string on its own (each is tokenized on its
    own), token arrays counted exactly."""
    if isinstance(value, str):
        return estimate_text_tokens(value, provider="openai")
    items = as_list(value)
    if all(isinstance(item, int) for item in items):
        return len(items)
    total = 0
    for item in items:
        if isinstance(item, str):
            total += estimate_text_tokens(item, provider="openai")
        elif isinstance(item, list):
            total += len(item)
        else:
            total += len(json_text(item).encode("utf-8"))
    return total
