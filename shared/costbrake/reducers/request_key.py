"""The exact cache's key: a hash of the canonical request, and which requests may be cached at all.

The key covers everything that can change the answer: the API, the model, the conversation (messages / input /
system / instructions), tools, and every other parameter (temperature, top_p, max tokens, response_format, seed,
stop, n, tool_choice, reasoning, ...), plus the upstream headers that select behaviour (``anthropic-version``,
``anthropic-beta``, ``openai-beta``). Parameters are excluded only when known not to change the answer
(``NOT_IN_KEY``): an unknown parameter is in the key, so a new provider option can cost hits but never serve a
wrong answer. Compute the key on the body as it is sent upstream (after model resolution, downgrade, clamping
and truncation), so an answer is only reused for the same upstream request.

Canonical form: JSON with sorted keys, no whitespace, UTF-8, and integral floats written as integers
(``0.0`` and ``0`` are one temperature). Two bodies differing only in key order, ``user``, ``metadata``,
``stream``, ``stream_options`` or ``service_tier`` have one key.

Which requests are cached (``exact_eligibility``), decided per request:

- ``X-Costbrake-Cache: bypass`` (or ``off``/``no-store``): never looked up nor stored.
- Requests whose answer depends on state outside the body are never cached: a Responses ``conversation``
  (it grows), ``background`` mode (the answer is a queued job), an Anthropic ``container`` or ``mcp_servers``.
- Otherwise a request is cached when it is deterministic: ``temperature`` given and 0 and no server-side tool
  (web search, code execution: their results change with the world); an embeddings request always.
- ``X-Costbrake-Cache: allow`` caches any other request: the client accepts a previous answer to an identical
  request (e.g. an FAQ bot that sends temperature 0.7 but wants one answer per question).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from costbrake.providers.base import CHAT_COMPLETIONS, EMBEDDINGS, MESSAGES, RESPONSES

KEY_VERSION = "v1"  # in every key: a change of the canonical form starts a new key space instead of mismatching
CACHE_HEADER = "x-costbrake-cache"  # request: allow | bypass; the gateway answers hit | miss in its own header
CACHED_APIS = frozenset({CHAT_COMPLETIONS, RESPONSES, MESSAGES, EMBEDDINGS})

# Body fields that do not change the answer: who asks, bookkeeping, transport and the serving tier.
NOT_IN_KEY = frozenset(
    {
        "user",
        "metadata",
        "stream",
        "stream_options",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",  # provider prompt-cache routing
        "prompt_cache_retention",
    }
)
# Upstream headers that change the answer (lower-case).
ANSWER_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta")
# Tool types that run at the provider and read the world (their results change): Anthropic server tools and
# OpenAI Responses built-in tools. Client tools ("function", "custom", Anthropic's untyped) are deterministic.
_CLIENT_TOOL_TYPES = frozenset({None, "function", "custom"})


class CacheRequest(StrEnum):
    """What a client asks of the cache in ``X-Costbrake-Cache``."""

    DEFAULT = ""  # deterministic requests only
    ALLOW = "allow"  # cache this request even though it is not deterministic
    BYPASS = "bypass"  # neither look up nor store


_REQUEST_SPELLINGS = {"": CacheRequest.DEFAULT, "allow": CacheRequest.ALLOW, "bypass": CacheRequest.BYPASS}
_REQUEST_SPELLINGS |= {"off": CacheRequest.BYPASS, "no-store": CacheRequest.BYPASS, "no-cache": CacheRequest.BYPASS}


class InvalidCacheHeader(ValueError):
    """An ``X-Costbrake-Cache`` value that is none of the known ones (the gateway answers 400)."""


def cache_request(header: str | None) -> CacheRequest:
    """The client's ``X-Costbrake-Cache`` (absent: DEFAULT); InvalidCacheHeader for an unknown value."""
    value = (header or "").strip().lower()
    if value not in _REQUEST_SPELLINGS:
        raise InvalidCacheHeader(f"X-Costbrake-Cache must be 'allow' or 'bypass', not {value[:40]!r}.")
    return _REQUEST_SPELLINGS[value]


@dataclass(frozen=True)
class Eligibility:
    cacheable: bool
    reason: str  # why (or why not): for logs and the gateway's miss header


def stateful_reason(api: str, body: Mapping[str, Any]) -> str | None:
    """Why a request's answer depends on state outside its body (never cached), or None."""
    if api not in CACHED_APIS:
        return f"the {api} API is not cached"
    if api == RESPONSES:
        if body.get("conversation") not in (None, ""):
            return "a Responses conversation changes with every turn"
        if body.get("background") is True:
            return "a background response is a queued job, not an answer"
        if body.get("prompt") not in (None, ""):
            return "a stored prompt template can change at the provider"
    if api == MESSAGES:
        if body.get("container") not in (None, ""):
            return "a code-execution container keeps state"
        if body.get("mcp_servers"):
            return "MCP servers answer from outside the request"
    return None


def exact_eligibility(api: str, body: Mapping[str, Any], request: CacheRequest) -> Eligibility:
    """Whether a request's answer may be looked up and stored by its exact key (see the module's rules)."""
    if request is CacheRequest.BYPASS:
        return Eligibility(False, "bypass requested")
    stateful = stateful_reason(api, body)
    if stateful is not None:
        return Eligibility(False, stateful)
    if api == EMBEDDINGS:
        return Eligibility(True, "embeddings are deterministic")
    if request is CacheRequest.ALLOW:
        return Eligibility(True, "allowed by X-Costbrake-Cache")
    if server_tools(api, body):
        return Eligibility(False, "server-side tools answer from the world (X-Costbrake-Cache: allow caches it)")
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool) and temperature == 0:
        return Eligibility(True, "temperature 0")
    return Eligibility(False, "not deterministic: temperature is not 0 (X-Costbrake-Cache: allow caches it)")


def server_tools(api: str, body: Mapping[str, Any]) -> bool:
    """Whether the request offers a tool that runs at the provider (web search, code execution, ...)."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return False
    if api == CHAT_COMPLETIONS:  # chat tools are client functions (web search there is a model, in the key)
        return False
    return any(isinstance(tool, Mapping) and tool.get("type") not in _CLIENT_TOOL_TYPES for tool in tools)


def key_fields(api: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the key is computed from: the API, the body without ``NOT_IN_KEY`` and the answer-changing headers."""
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    return {
        "api": api,
        "body": {name: value for name, value in body.items() if name not in NOT_IN_KEY},
        "headers": {name: lowered[name] for name in ANSWER_HEADERS if name in lowered},
    }


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text, integral floats as integers."""
    return json.dumps(_normalised(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """SHA-256 (hex) of ``value``'s canonical JSON, prefixed by the key version."""
    text = f"{KEY_VERSION}:{canonical_json(value)}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def request_key(api: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> str:
    """The exact cache key of a request body (64 hex characters)."""
    return digest(key_fields(api, body, headers))


def _normalised(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(key): _normalised(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalised(item) for item in value]
    return value
