"""A loopback stand-in for OpenAI and Anthropic that speaks their real HTTP formats.

It serves ``POST /v1/chat/completions``, ``/v1/responses`` and ``/v1/embeddings`` (OpenAI) and ``POST
/v1/messages`` and ``/v1/messages/count_tokens`` (Anthropic), plain JSON and server-sent events, closely
enough that the official SDKs parse its answers (chat completions and Messages: ``mock_chat``, what they generate:
``mock_completions``; the other APIs: ``mock_responses``). The local stack uses it when no provider keys are set;
every reply says it comes from the costbrake mock provider.

Requests are validated as the real APIs validate them (``mock_validation``): a request they would refuse
gets a 400 in that provider's error JSON. Usage is deterministic and billed as the provider would
(``mock_usage``):
- input tokens: the text counted by ``count_tokens(dialect, text)`` (default ceil(characters / 4)) plus
  per-message overheads, images by their pixel size, PDFs per page, web-search results per search;
- output tokens: ``MIN_OUTPUT_TOKENS`` to ``MAX_OUTPUT_TOKENS`` words chosen by a SHA-256 of model and
  messages (one token per word, or what ``count_tokens`` counts in the reply), capped at
  ``max_completion_tokens`` / ``max_tokens`` — when capped, the answer ends with finish_reason ``length``
  (OpenAI) / stop_reason ``max_tokens`` (Anthropic);
- prompt cache: Anthropic blocks with ``cache_control`` write their prefix on the first request
  (``cache_creation`` split by TTL) and read it on a repeat; OpenAI reports ``cached_tokens`` for a repeated
  prefix of at least 1,024 tokens;
- ``service_tier`` is echoed as the provider reports it; Anthropic web-search tools perform
  ``min(max_uses, web_searches)`` searches (``usage.server_tool_use``); OpenAI search models one per request.

Every request the mock starts generating is appended to ``billed`` — also when the client then times out or
the connection is dropped — so tests can compare what the provider billed with what costbrake charged.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, NamedTuple

from costbrake.clock import Clock, SystemClock
from costbrake.local.mock_chat import ChatMocks
from costbrake.local.mock_completions import MAX_OUTPUT_TOKENS, MIN_OUTPUT_TOKENS, Completion, complete
from costbrake.local.mock_http import (
    MockServer,
    RecordedRequest,
    Reply,
    error_reply,
)
from costbrake.local.mock_responses import ApiMocks
from costbrake.local.mock_usage import (
    CHARS_PER_TOKEN,
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    PromptCache,
    PromptInput,
    TokenCounter,
    chars_per_token,
)
from costbrake.local.mock_validation import invalid_request

__all__ = [
    "CHARS_PER_TOKEN",
    "MAX_OUTPUT_TOKENS",
    "MESSAGE_OVERHEAD_TOKENS",
    "MIN_OUTPUT_TOKENS",
    "REPLY_PRIMING_TOKENS",
    "Billed",
    "MockProvider",
    "RecordedRequest",
    "Streamed",
]

Dialect = Literal["openai", "anthropic"]
_ROUTES: dict[str, Dialect] = {
    "/v1/chat/completions": "openai",
    "/v1/responses": "openai",
    "/v1/embeddings": "openai",
    "/v1/messages": "anthropic",
    "/v1/messages/count_tokens": "anthropic",
}


class Streamed(NamedTuple):
    """How far one streamed answer got before it ended: all its events, or fewer when the client left."""

    request_id: str
    events_sent: int
    events_total: int

    @property
    def completed(self) -> bool:
        return self.events_sent == self.events_total


class Billed(NamedTuple):
    """One generation the provider would bill: the usage it reported (or would have, had it been delivered).

    For OpenAI search models the usage also holds ``web_search_requests`` (not a field of OpenAI's usage).
    """

    request_id: str
    dialect: Dialect
    model: str
    usage: dict[str, Any]
    service_tier: str
    at: datetime | None = None  # when the mock generated it (its clock), for the admin usage reports


@dataclass
class _Faults:
    """Injected misbehaviour, consumed one provider call at a time."""

    failures: deque[int] = field(default_factory=deque)
    delays: deque[float] = field(default_factory=deque)
    usage_omissions: int = 0
    stream_gaps: deque[float] = field(default_factory=deque)
    drops: deque[int] = field(default_factory=deque)


class MockProvider:
    """OpenAI- and Anthropic-compatible HTTP server on loopback, in a daemon thread.

    ``count_tokens(dialect, text)`` replaces the characters / 4 rule for input text and the reply (plug in
    a reference tokenizer to bill as the provider would). ``web_searches`` is how many searches the model
    makes when offered an Anthropic web-search tool (at most its ``max_uses``). ``anthropic_auto_tier`` is
    the tier Anthropic reports for ``service_tier: auto`` (the default): ``standard`` or ``priority``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock | None = None,
        count_tokens: TokenCounter | None = None,
        web_searches: int = 3,
        anthropic_auto_tier: str = "standard",
    ) -> None:
        self._address = (host, port)
        self._clock = clock or SystemClock()
        self._count: TokenCounter = count_tokens or chars_per_token
        self._counts_reply = count_tokens is not None
        self._web_searches = web_searches
        self._anthropic_auto_tier = anthropic_auto_tier
        self._lock = threading.Lock()
        self._faults = _Faults()
        self._cache = PromptCache()
        self._stopping = threading.Event()
        self._server: MockServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._chat = ChatMocks(self)
        self._apis = ApiMocks(self)
        self.requests: list[RecordedRequest] = []
        self.billed: list[Billed] = []
        self.streamed: list[Streamed] = []
        # Answers this many output tokens (before the max_tokens cap) instead of the hashed length.
        self.reply_tokens: int | None = None

    @property
    def base_url(self) -> str:
        """e.g. ``http://127.0.0.1:54321`` — no ``/v1`` suffix."""
        if self._base_url is None:
            raise RuntimeError("MockProvider is not started")
        return self._base_url

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("MockProvider is already started")
        self._stopping.clear()
        self._server = MockServer(self._address, self)
        host, port = self._server.server_address[:2]
        self._base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="costbrake-mock-provider",
            daemon=True,
        )
        self._thread.start()
        return self._base_url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in an injected delay
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server, self._thread, self._base_url = None, None, None

    def __enter__(self) -> MockProvider:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def count_tokens_with(self, count_tokens: TokenCounter | None) -> None:
        """Bill with ``count_tokens`` from now on (None: back to ceil(characters / 4))."""
        with self._lock:
            self._count = count_tokens or chars_per_token
            self._counts_reply = count_tokens is not None

    def fail_next(self, status: int, times: int = 1) -> None:
        """The next ``times`` provider calls answer ``status`` with the provider's own error JSON (not billed)."""
        with self._lock:
            self._faults.failures.extend([status] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` provider calls wait ``seconds`` before answering.

        The answer is generated (and billed) first: a client that times out meanwhile still pays for it.
        """
        with self._lock:
            self._faults.delays.extend([seconds] * times)

    def omit_usage_next(self, times: int = 1) -> None:
        """The next ``times`` streamed answers never report usage (the provider still bills them).

        OpenAI: no usage chunk even when ``include_usage`` was asked for. Anthropic: the stream is cut short
        after the text deltas, before ``message_delta`` (``message_start`` has only a provisional count).
        """
        with self._lock:
            self._faults.usage_omissions += times

    def slow_stream_next(self, seconds_between_events: float, times: int = 1) -> None:
        """The next ``times`` streamed answers pause between events (a long generation trickling in)."""
        with self._lock:
            self._faults.stream_gaps.extend([seconds_between_events] * times)

    def drop_connection_next(self, after_bytes: int = 0, times: int = 1) -> None:
        """The next ``times`` provider calls read the request, then close the connection after sending
        ``after_bytes`` bytes of the answer (0: none). A valid request is billed: generation had started."""
        with self._lock:
            self._faults.drops.extend([after_bytes] * times)

    def reset(self) -> None:
        """Forget recorded requests, billed generations, cached prompts and queued faults."""
        with self._lock:
            self.requests.clear()
            self.billed.clear()
            self.streamed.clear()
            self._faults = _Faults()
        self._cache.clear()

    # --- request handling (called on the server's handler threads) ---

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _take(self, queue: deque[Any]) -> Any:
        with self._lock:
            return queue.popleft() if queue else None

    def _take_usage_omission(self) -> bool:
        with self._lock:
            if self._faults.usage_omissions <= 0:
                return False
            self._faults.usage_omissions -= 1
            return True

    def _wait(self, seconds: float) -> bool:
        """Sleep; False when the server is stopping meanwhile."""
        return not self._stopping.wait(seconds)

    def _answer(self, request: RecordedRequest) -> Reply:
        dialect = _ROUTES.get(request.path)
        if dialect is None or request.method != "POST":
            guess: Dialect = "anthropic" if "anthropic-version" in request.headers else "openai"
            return error_reply(guess, 404, f"Unknown request URL: {request.method} {request.path}.")
        reply = self._generate(dialect, request)
        return replace(reply, delay=self._take(self._faults.delays) or 0.0, drop_after=self._take(self._faults.drops))

    def _generate(self, dialect: Dialect, request: RecordedRequest) -> Reply:
        if not _has_credentials(dialect, request.headers):
            return error_reply(dialect, 401, "Missing API key: send one (any non-empty value is accepted).")
        failure = self._take(self._faults.failures)
        if failure is not None:
            return error_reply(dialect, failure, f"Injected failure {failure} (costbrake mock provider).")
        other_api = self._apis.answer(request, self._take_usage_omission)
        if other_api is not None:
            return other_api
        problem = invalid_request(dialect, request.headers, request.body)
        if problem is not None:
            return error_reply(dialect, 400, problem)
        body: Mapping[str, Any] = request.body
        streamed = body.get("stream") is True
        omit_usage = streamed and self._take_usage_omission()
        if dialect == "openai":
            return self._chat.openai_reply(body, streamed=streamed, omit_usage=omit_usage)
        return self._chat.anthropic_reply(body, streamed=streamed, omit_usage=omit_usage)

    def _bill(self, reply_id: str, dialect: Dialect, model: str, usage: dict[str, Any], tier: str) -> None:
        with self._lock:
            usage_copy = json.loads(json.dumps(usage))
            self.billed.append(Billed(reply_id, dialect, model, usage_copy, tier, self._clock.now()))

    def _streamed(self, reply_id: str, sent: int, total: int) -> None:
        with self._lock:
            self.streamed.append(Streamed(reply_id, sent, total))

    def _take_stream_gap(self) -> float:
        return float(self._take(self._faults.stream_gaps) or 0.0)

    def _complete(
        self, dialect: Dialect, body: Mapping[str, Any], prompt: PromptInput, extra: int, cap: int | None
    ) -> Completion:
        """What the model 'generates' for ``body`` (``mock_completions.complete``, with this provider's counter)."""
        return complete(
            dialect,
            body,
            prompt,
            extra,
            cap,
            count=self._count,
            counts_reply=self._counts_reply,
            reply_tokens=self.reply_tokens,
        )


def _has_credentials(dialect: Dialect, headers: Mapping[str, str]) -> bool:
    bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
    if dialect == "openai":
        return headers.get("authorization", "").startswith("Bearer ") and bool(bearer)
    return bool(headers.get("x-api-key", "").strip()) or bool(bearer)
