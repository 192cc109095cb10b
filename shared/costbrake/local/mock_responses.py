"""The mock provider's other APIs, in the real formats: OpenAI Responses (JSON and ``response.*`` events),
OpenAI embeddings, Anthropic count_tokens.

Billing follows ``mock_provider`` (text by the pluggable token counter, message overheads, images, PDFs, web
search results, the OpenAI prompt cache, service tiers) and adds:
- Responses: ``instructions`` is one message; input items count as their text (function calls as name and
  arguments); a ``previous_response_id`` brings in the stored response's input and output tokens (the mock keeps
  every response it made); reasoning models (o-series, gpt-5 but gpt-5-chat) reason ``REASONING_TOKENS`` tokens
  first (``reasoning.effort: none``: none), inside ``max_output_tokens``; a function tool is called (first
  function, or the one ``tool_choice`` names, arguments ``{}``) unless ``tool_choice`` is ``none`` or the input
  already answers a call; a web search tool searches ``min(web_searches, max_tool_calls)`` times, each a
  ``web_search_call`` output item and ``WEB_SEARCH_RESULT_TOKENS`` input tokens. Output that reaches
  ``max_output_tokens`` ends ``incomplete`` (``incomplete_details.reason: max_output_tokens``);
- embeddings: each input's tokens (token arrays by their length), vectors of the requested ``dimensions``, unit
  length (``encoding_format: base64``: little-endian float32): a text's is a hashed bag of its words and
  character trigrams (``text_vector``: near-duplicate texts are close, unrelated ones are not), a token array's
  drawn from a SHA-256 of model and input;
- count_tokens: the Messages input the mock would bill, free (not in ``billed``).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from costbrake.local.mock_api_validation import (
    EMBEDDING_DIMENSIONS,
    invalid_count_tokens_request,
    invalid_embeddings_request,
    invalid_responses_request,
)
from costbrake.local.mock_http import (
    RecordedRequest,
    Reply,
    dumps,
    error_reply,
    json_reply,
    request_id,
    sse,
    stream_reply,
)
from costbrake.local.mock_problems import Problem
from costbrake.local.mock_usage import (
    MESSAGE_OVERHEAD_TOKENS,
    WEB_SEARCH_RESULT_TOKENS,
    PromptInput,
    Segment,
    TokenCounter,
    anthropic_input,
)
from costbrake.local.mock_usage import (
    _openai_message as openai_message_tokens,
)

if TYPE_CHECKING:
    from costbrake.local.mock_provider import MockProvider

REASONING_TOKENS = 64
_REASONING_MODEL = re.compile(r"^(o1|o3|o4)(-|$)|^gpt-5(?!-chat|\.\d+-chat)")
_OPENAI_SERVED_TIER = {"auto": "default", "fast": "priority"}
_TEXT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}


def responses_input(body: Mapping[str, Any], count: TokenCounter) -> PromptInput:
    """What a Responses request's own body bills (a previous response's context is added by the caller)."""
    model = str(body.get("model") or "")
    segments: list[Segment] = []
    if body.get("tools"):
        tools = dumps(body["tools"])
        segments.append(Segment(count("openai", tools), tools))
    texts: list[str] = []
    if isinstance(body.get("instructions"), str):
        texts.append(body["instructions"])
        segments.append(Segment(MESSAGE_OVERHEAD_TOKENS + count("openai", body["instructions"]), "instructions"))
    items = body.get("input")
    for item in [{"role": "user", "content": items}] if isinstance(items, str) else items or ():
        text, extra = _item_text(item, model)
        texts.append(text)
        segments.append(Segment(MESSAGE_OVERHEAD_TOKENS + count("openai", text) + extra, dumps(item)))
    return PromptInput(tuple(segments), tuple(texts))


def _item_text(item: Any, model: str) -> tuple[str, int]:
    if not isinstance(item, Mapping):
        return dumps(item), 0
    kind = item.get("type", "message")
    if kind == "function_call":
        return f"{item.get('name', '')}{item.get('arguments', '')}", 0
    if kind == "function_call_output":
        output = item.get("output")
        return output if isinstance(output, str) else dumps(output), 0
    if kind != "message":
        return dumps(item), 0
    content = item.get("content")
    if isinstance(content, str):
        return content, 0
    chat_parts: list[Any] = []  # the same parts in chat's shapes, billed by the chat rules
    for part in content if isinstance(content, list) else ():
        field = _TEXT_PARTS.get(str(part.get("type"))) if isinstance(part, Mapping) else None
        if field is not None:
            chat_parts.append({"type": "text", "text": str(part.get(field) or "")})
        elif isinstance(part, Mapping) and part.get("type") == "input_image":
            image = {"url": str(part.get("image_url") or ""), "detail": part.get("detail") or "auto"}
            chat_parts.append({"type": "image_url", "image_url": image})
        elif isinstance(part, Mapping) and part.get("type") == "input_file":
            chat_parts.append({"type": "file", "file": {"file_data": part.get("file_data") or ""}})
        else:
            chat_parts.append(part)
    return openai_message_tokens({"role": item.get("role"), "content": chat_parts}, model)


class ApiMocks:
    """Responses, embeddings and count_tokens for a ``MockProvider`` (its counter, cache, faults and ledger)."""

    def __init__(self, mock: MockProvider) -> None:
        self._mock = mock
        self._contexts: dict[str, int] = {}  # response id -> its input + output tokens, for previous_response_id

    def answer(self, request: RecordedRequest, take_usage_omission: Callable[[], bool]) -> Reply | None:
        """The answer to a request for one of these APIs (None: not one of them)."""
        body = request.body if isinstance(request.body, Mapping) else None
        if request.path == "/v1/messages/count_tokens":
            return self.count_tokens(request.headers, request.body)
        if request.path == "/v1/embeddings":
            return self.embeddings(body or {})
        if request.path != "/v1/responses":
            return None
        problem = invalid_responses_request(body) if body is not None else Problem("Expected a JSON object body.")
        if problem is not None or body is None:
            return error_reply("openai", 400, problem or "Expected a JSON object body.")
        streamed = body.get("stream") is True
        return self.responses(body, streamed=streamed, omit_usage=streamed and take_usage_omission())

    # --- Responses ---

    def responses(self, body: Mapping[str, Any], *, streamed: bool, omit_usage: bool) -> Reply:
        mock = self._mock
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self._contexts:
            problem = f"Previous response with id '{previous}' not found."
            return error_reply("openai", 400, problem)
        if body.get("conversation") is not None:
            return error_reply("openai", 404, "Conversation not found (the costbrake mock keeps no conversations).")
        prompt = responses_input(body, mock._count)
        carried = self._contexts.get(str(previous), 0)
        tools = [tool for tool in body.get("tools") or () if isinstance(tool, Mapping)]
        searching = any(str(tool.get("type", "")).startswith("web_search") for tool in tools)
        limit = body.get("max_tool_calls")
        searches = min(mock._web_searches, limit if isinstance(limit, int) else mock._web_searches) if searching else 0
        reasoning = _reasoning_tokens(body)
        cap = body.get("max_output_tokens") if isinstance(body.get("max_output_tokens"), int) else None
        called = _function_to_call(body, tools)
        room = None if cap is None else max(cap - reasoning, 0)
        if called is None:
            completion = mock._complete("openai", body, prompt, carried + searches * WEB_SEARCH_RESULT_TOKENS, room)
            words, visible, truncated = completion.words, completion.output_tokens, completion.truncated
        else:
            words, visible = (), max(1, mock._count("openai", f"{called}{{}}"))
            truncated = room is not None and visible > room
            visible = min(visible, room) if room is not None else visible
        truncated = truncated or (cap is not None and reasoning >= cap)
        input_tokens = prompt.tokens + carried + searches * WEB_SEARCH_RESULT_TOKENS
        output_tokens = min(reasoning + visible, cap) if cap is not None else reasoning + visible
        usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": mock._cache.openai(str(body["model"]), prompt)},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": min(reasoning, output_tokens)},
            "total_tokens": input_tokens + output_tokens,
        }
        requested = str(body.get("service_tier") or "auto")
        tier = _OPENAI_SERVED_TIER.get(requested, requested)
        reply_id = request_id()
        extra = {"web_search_requests": searches} if searches else {}
        mock._bill(reply_id, "openai", str(body["model"]), {**usage, **extra}, tier)
        output = _output_items(reasoning, searches, called, " ".join(words), truncated)
        response = _response(body, output, usage, tier, truncated, int(mock._clock.now().timestamp()))
        self._contexts[response["id"]] = input_tokens + output_tokens
        headers = {"x-request-id": reply_id, "openai-processing-ms": "1", "x-costbrake-mock": "true"}
        if not streamed:
            return json_reply(200, response, headers)
        return stream_reply(_response_events(response, omit_usage=omit_usage), headers)

    # --- embeddings ---

    def embeddings(self, body: Mapping[str, Any]) -> Reply:
        mock = self._mock
        inputs = _embedding_inputs(body.get("input"))
        counts = None if inputs is None else [_input_tokens(item, mock._count) for item in inputs]
        problem = invalid_embeddings_request(body, counts)
        if problem is not None or inputs is None or counts is None:
            return error_reply("openai", 400, problem or "'$.input' is invalid.")
        model = str(body["model"])
        dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS.get(model, 1536)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector = _vector(model, item, int(dimensions))
            encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(counts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        reply_id = request_id()
        mock._bill(reply_id, "openai", model, usage, "default")
        headers = {"x-request-id": reply_id, "openai-processing-ms": "1", "x-costbrake-mock": "true"}
        return json_reply(200, {"object": "list", "data": data, "model": model, "usage": usage}, headers)

    # --- count_tokens ---

    def count_tokens(self, headers: Mapping[str, str], body: Any) -> Reply:
        problem = invalid_count_tokens_request(headers, body)
        if problem is not None:
            return error_reply("anthropic", 400, problem)
        tokens = anthropic_input(body, self._mock._count).tokens
        return json_reply(200, {"input_tokens": tokens}, {"request-id": request_id(), "x-costbrake-mock": "true"})


def _reasoning_tokens(body: Mapping[str, Any]) -> int:
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, Mapping) else None
    return REASONING_TOKENS if _REASONING_MODEL.match(str(body["model"])) and effort != "none" else 0


def _function_to_call(body: Mapping[str, Any], tools: list[Mapping[str, Any]]) -> str | None:
    """The function the mock calls: none if tool_choice is "none" or the input already holds a call's output."""
    functions = [str(tool.get("name")) for tool in tools if tool.get("type") == "function"]
    choice = body.get("tool_choice")
    items = body.get("input")
    answered = isinstance(items, list) and any(
        isinstance(item, Mapping) and item.get("type") == "function_call_output" for item in items
    )
    if not functions or choice == "none" or answered:
        return None
    named = choice.get("name") if isinstance(choice, Mapping) else None
    return str(named) if named in functions else functions[0]


def _output_items(reasoning: int, searches: int, called: str | None, text: str, truncated: bool) -> list[Any]:
    items: list[dict[str, Any]] = []
    if reasoning:
        items.append({"id": f"rs_{uuid.uuid4().hex[:24]}", "type": "reasoning", "summary": []})
    for index in range(searches):
        action = {"type": "search", "query": f"costbrake mock search {index + 1}"}
        search = {"id": f"ws_{uuid.uuid4().hex[:24]}", "type": "web_search_call", "status": "completed"}
        items.append({**search, "action": action})
    if called is not None:
        call = {"id": f"fc_{uuid.uuid4().hex[:24]}", "type": "function_call", "status": "completed"}
        items.append({**call, "call_id": f"call_{uuid.uuid4().hex[:24]}", "name": called, "arguments": "{}"})
    elif text:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        status = "incomplete" if truncated else "completed"
        message = {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "status": status, "role": "assistant"}
        items.append({**message, "content": [part]})
    return items


def _response(
    body: Mapping[str, Any], output: list[Any], usage: Any, tier: str, truncated: bool, created: int
) -> dict[str, Any]:
    reasoning: Mapping[str, Any] = body["reasoning"] if isinstance(body.get("reasoning"), Mapping) else {}
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": created,
        "status": "incomplete" if truncated else "completed",
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": str(body["model"]),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": tier,
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": list(body.get("tools") or []),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _response_events(response: dict[str, Any], *, omit_usage: bool) -> list[bytes]:
    """The stream of ``response``: created, in_progress, each output item, then completed / incomplete
    (omit_usage: the stream ends before that last event, which alone carries the usage)."""
    events: list[dict[str, Any]] = []
    opening = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    events += [{"type": "response.created", "response": opening}, {"type": "response.in_progress", "response": opening}]
    for index, item in enumerate(response["output"]):
        events += _item_events(index, item)
    if not omit_usage:
        events.append({"type": f"response.{response['status']}", "response": response})
    return [sse(event["type"], dumps({**event, "sequence_number": n})) for n, event in enumerate(events)]


def _item_events(index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    where = {"output_index": index, "item_id": item["id"]}
    if item["type"] == "message":
        part = item["content"][0]
        empty = {**part, "text": ""}
        events = [
            {"type": "response.output_item.added", "output_index": index, "item": {**item, "content": []}},
            {"type": "response.content_part.added", **where, "content_index": 0, "part": empty},
        ]
        words = part["text"].split(" ")
        pieces = [" ".join(words[i : i + 4]) for i in range(0, len(words), 4)]
        for number, piece in enumerate(pieces):
            delta = piece if number == 0 else " " + piece
            events.append({"type": "response.output_text.delta", **where, "content_index": 0, "delta": delta})
        done = {"content_index": 0, "text": part["text"], "logprobs": []}
        events += [
            {"type": "response.output_text.done", **where, **done},
            {"type": "response.content_part.done", **where, "content_index": 0, "part": part},
        ]
    elif item["type"] == "function_call":
        events = [
            {"type": "response.output_item.added", "output_index": index, "item": {**item, "arguments": ""}},
            {"type": "response.function_call_arguments.delta", **where, "delta": item["arguments"]},
            {"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]},
        ]
    else:
        events = [{"type": "response.output_item.added", "output_index": index, "item": item}]
    return [*events, {"type": "response.output_item.done", "output_index": index, "item": item}]


def _embedding_inputs(value: Any) -> list[str | list[int]] | None:
    """The inputs one by one (a token array is one input), or None for a shape the API refuses."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return None
    if value and all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return [list(value)]
    if all(isinstance(item, str | list) for item in value):
        return list(value)
    return None


def _input_tokens(item: str | list[int], count: TokenCounter) -> int:
    return len(item) if isinstance(item, list) else count("openai", item)


def _vector(model: str, item: str | list[int], dimensions: int) -> list[float]:
    """A text's vector makes near-duplicate texts close (a hashed bag of words and character trigrams), so
    tests can aim above and below a similarity threshold; a token array's is drawn from a hash."""
    if isinstance(item, str):
        vector = text_vector(model, item, dimensions)
        if vector is not None:
            return vector
    seed = hashlib.sha256(dumps([model, item]).encode("utf-8", "surrogatepass")).digest()
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
        values += [(value - 32768) / 32768 for value in struct.unpack(">16H", digest)]
        block += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [value / norm for value in values]


def text_vector(model: str, text: str, dimensions: int) -> list[float] | None:
    """Feature hashing of ``text``'s lower-case words and character trigrams (each a +1 or -1 in a dimension drawn
    from a hash of the model and the feature), unit length; None for a text with no feature. Texts that share
    most of their words and trigrams have a cosine similarity near 1; unrelated texts near 0."""
    lowered = " ".join(re.findall(r"\w+", text.lower()))
    features = [f"w:{word}" for word in lowered.split()]
    padded = f" {lowered} "
    features += [f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2)]
    if not lowered:
        return None
    values = [0.0] * dimensions
    for feature in features:
        digest = hashlib.blake2b(f"{model}\x00{feature}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
        number = int.from_bytes(digest, "big")
        values[(number >> 1) % dimensions] += 1.0 if number & 1 else -1.0
    norm = math.sqrt(sum(value * value for value in values))
    return [value / norm for value in values] if norm else None
