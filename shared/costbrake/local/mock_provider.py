"""A loopback stand-in for OpenAI and Anthropic that speaks their real HTTP formats.

It serves ``POST /v1/chat/completions`` (OpenAI) and ``POST /v1/messages`` (Anthropic), plain JSON and
server-sent events, closely enough that the official SDKs parse its answers. The local stack uses it when
no provider keys are set; every reply says it comes from the costbrake mock provider.

Usage is deterministic and realistic in size:
- input tokens: for each message (the Anthropic ``system`` prompt counts as one) ``MESSAGE_OVERHEAD_TOKENS``
  plus ceil(characters / ``CHARS_PER_TOKEN``) of its text (non-text parts and fields count as their JSON),
  plus ceil(characters / ``CHARS_PER_TOKEN``) of the ``tools`` JSON, plus ``REPLY_PRIMING_TOKENS``;
- output tokens: ``MIN_OUTPUT_TOKENS`` to ``MAX_OUTPUT_TOKENS`` chosen by a SHA-256 of model and messages,
  capped at ``max_completion_tokens`` / ``max_tokens`` — when capped, the answer ends with finish_reason
  ``length`` (OpenAI) / stop_reason ``max_tokens`` (Anthropic);
- cache counts are always 0; the reply text has one word per output token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import socket
import sys
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from costbrake.clock import Clock, SystemClock

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
REPLY_PRIMING_TOKENS = 3
MIN_OUTPUT_TOKENS = 20
MAX_OUTPUT_TOKENS = 300
WORDS_PER_STREAM_EVENT = 4
MOCK_LABEL = "This reply comes from the costbrake mock provider; no real model was called."
SYSTEM_FINGERPRINT = "fp_costbrake_mock"

Dialect = Literal["openai", "anthropic"]
_ROUTES: dict[str, Dialect] = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}
_FILLER_WORDS = ("budget", "tokens", "ledger", "window", "spend", "limit", "cost", "call", "cap", "model")

# HTTP status -> (error type, error code) in each provider's error JSON.
_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON; None when the body was not JSON
    raw_body: bytes = b""


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    events: tuple[bytes, ...] | None = None  # a streamed answer, one SSE event per element


@dataclass
class _Faults:
    """Injected misbehaviour, consumed one provider call at a time."""

    failures: deque[int] = field(default_factory=deque)
    delays: deque[float] = field(default_factory=deque)
    usage_omissions: int = 0
    stream_gaps: deque[float] = field(default_factory=deque)


@dataclass(frozen=True)
class _Completion:
    """What the mock 'generated' for one request; identical for identical requests."""

    model: str
    input_tokens: int
    output_tokens: int
    truncated: bool
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def pieces(self) -> list[str]:
        """The text split into stream deltas that concatenate back to ``text``."""
        pieces = []
        for start in range(0, len(self.words), WORDS_PER_STREAM_EVENT):
            piece = " ".join(self.words[start : start + WORDS_PER_STREAM_EVENT])
            pieces.append(piece if start == 0 else " " + piece)
        return pieces


class MockProvider:
    """OpenAI- and Anthropic-compatible HTTP server on loopback, in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, clock: Clock | None = None) -> None:
        self._address = (host, port)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._faults = _Faults()
        self._stopping = threading.Event()
        self._server: _MockServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self.requests: list[RecordedRequest] = []

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
        self._server = _MockServer(self._address, self)
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

    def fail_next(self, status: int, times: int = 1) -> None:
        """The next ``times`` provider calls answer ``status`` with the provider's own error JSON."""
        with self._lock:
            self._faults.failures.extend([status] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` provider calls wait ``seconds`` before answering."""
        with self._lock:
            self._faults.delays.extend([seconds] * times)

    def omit_usage_next(self, times: int = 1) -> None:
        """The next ``times`` streamed answers never report usage.

        OpenAI: no usage chunk even when ``include_usage`` was asked for. Anthropic: the stream is cut short
        after the text deltas, before ``message_delta`` (``message_start`` has only a provisional count).
        """
        with self._lock:
            self._faults.usage_omissions += times

    def slow_stream_next(self, seconds_between_events: float, times: int = 1) -> None:
        """The next ``times`` streamed answers pause between events (a long generation trickling in)."""
        with self._lock:
            self._faults.stream_gaps.extend([seconds_between_events] * times)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults = _Faults()

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

    def _answer(self, request: RecordedRequest) -> _Reply:
        dialect = _ROUTES.get(request.path)
        if dialect is None or request.method != "POST":
            guess: Dialect = "anthropic" if "anthropic-version" in request.headers else "openai"
            return _error_reply(guess, 404, f"Unknown request URL: {request.method} {request.path}.")
        delay = self._take(self._faults.delays)
        if delay is not None:
            self._wait(delay)
        if not _has_credentials(dialect, request.headers):
            return _error_reply(dialect, 401, "Missing API key: send one (any non-empty value is accepted).")
        failure = self._take(self._faults.failures)
        if failure is not None:
            return _error_reply(dialect, failure, f"Injected failure {failure} (costbrake mock provider).")
        problem = _invalid_request(dialect, request.headers, request.body)
        if problem is not None:
            return _error_reply(dialect, 400, problem)
        body: Mapping[str, Any] = request.body
        streamed = body.get("stream") is True
        omit_usage = streamed and self._take_usage_omission()
        if dialect == "openai":
            return self._openai_reply(body, streamed=streamed, omit_usage=omit_usage)
        return self._anthropic_reply(body, streamed=streamed, omit_usage=omit_usage)

    def _take_stream_gap(self) -> float:
        return float(self._take(self._faults.stream_gaps) or 0.0)

    def _openai_reply(self, body: Mapping[str, Any], *, streamed: bool, omit_usage: bool) -> _Reply:
        completion = _complete(body, system=None, cap=_first_int(body, "max_completion_tokens", "max_tokens"))
        headers = {"x-request-id": _request_id(), "openai-processing-ms": "1", "x-costbrake-mock": "true"}
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        created = int(self._clock.now().timestamp())
        finish_reason = "length" if completion.truncated else "stop"
        usage = _openai_usage(completion)
        if not streamed:
            payload = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": completion.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": completion.text,
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
            return _json_reply(200, payload, headers)

        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, Mapping) and stream_options.get("include_usage") is True
        common = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": completion.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            # With include_usage every chunk has "usage": null except the final usage-only one.
            return {**common, "choices": [choice], **({"usage": None} if include_usage else {})}

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
        chunks += [chunk({"content": piece}, None) for piece in completion.pieces()]
        chunks.append(chunk({}, finish_reason))
        if include_usage and not omit_usage:
            chunks.append({**common, "choices": [], "usage": usage})
        events = [_sse(None, _dumps(payload)) for payload in chunks]
        events.append(_sse(None, "[DONE]"))
        return _stream_reply(events, headers)

    def _anthropic_reply(self, body: Mapping[str, Any], *, streamed: bool, omit_usage: bool) -> _Reply:
        completion = _complete(body, system=body.get("system"), cap=_first_int(body, "max_tokens"))
        headers = {"request-id": _request_id(), "x-costbrake-mock": "true"}
        stop_reason = "max_tokens" if completion.truncated else "end_turn"
        usage = _anthropic_usage(completion)
        message: dict[str, Any] = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": [{"type": "text", "text": completion.text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        if not streamed:
            return _json_reply(200, message, headers)

        # message_start carries the input counts and a provisional output count of 1, like the real API.
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        events = [
            _anthropic_event({"type": "message_start", "message": start}),
            _anthropic_event({"type": "content_block_start", "index": 0, "content_block": _EMPTY_TEXT}),
            _anthropic_event({"type": "ping"}),
        ]
        events += [
            _anthropic_event(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            )
            for piece in completion.pieces()
        ]
        if not omit_usage:
            final_usage = {field: usage[field] for field in _ANTHROPIC_COUNT_FIELDS}
            events += [
                _anthropic_event({"type": "content_block_stop", "index": 0}),
                _anthropic_event(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                        "usage": final_usage,
                    }
                ),
                _anthropic_event({"type": "message_stop"}),
            ]
        return _stream_reply(events, headers)


_EMPTY_TEXT = {"type": "text", "text": ""}
# Newer API versions repeat the input and cache counts in message_delta; the mock does too.
_ANTHROPIC_COUNT_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)


class _MockServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of concurrent test calls must queue, not be reset

    def __init__(self, address: tuple[str, int], mock: MockProvider) -> None:
        self.mock = mock
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up (its timeout, a closed pool) resets the connection: not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Ends kept-alive connections so no handler thread serves after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, as the SDKs expect
    server_version = "costbrake-mock-provider/1"
    timeout = 30  # an idle kept-alive connection ends its thread

    @property
    def _server(self) -> _MockServer:
        return cast(_MockServer, self.server)

    def setup(self) -> None:
        super().setup()
        self._server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the local stack print what matters themselves."""

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        raw_body = self.rfile.read(int(self.headers.get("content-length") or 0))
        request = RecordedRequest(
            method=self.command,
            path=urlsplit(self.path).path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=_parse_json(raw_body),
            raw_body=raw_body,
        )
        mock = self._server.mock
        mock._record(request)
        reply = mock._answer(request)
        try:
            if reply.events is None:
                self._send_body(reply)
            else:
                self._send_stream(reply, gap=mock._take_stream_gap())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout); nothing left to do

    def _send_body(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _send_stream(self, reply: _Reply, *, gap: float) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for index, event in enumerate(reply.events or ()):
            if index and gap and not self._server.mock._wait(gap):
                self.close_connection = True
                return
            self.wfile.write(f"{len(event):X}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


# --- the provider formats ---


def _complete(body: Mapping[str, Any], *, system: Any, cap: int | None) -> _Completion:
    messages = body.get("messages") or []
    texts = ([_text_of(system)] if system else []) + [_message_text(message) for message in messages]
    input_tokens = sum(MESSAGE_OVERHEAD_TOKENS + _tokens(text) for text in texts) + REPLY_PRIMING_TOKENS
    if body.get("tools"):
        input_tokens += _tokens(_dumps(body["tools"]))
    model = str(body["model"])
    seed = hashlib.sha256(_dumps([model, *texts]).encode("utf-8")).digest()
    wanted = MIN_OUTPUT_TOKENS + int.from_bytes(seed[:4], "big") % (MAX_OUTPUT_TOKENS - MIN_OUTPUT_TOKENS + 1)
    output_tokens = wanted if cap is None else min(wanted, cap)
    return _Completion(
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        truncated=output_tokens < wanted,
        words=_words(output_tokens, seed),
    )


def _words(count: int, seed: bytes) -> tuple[str, ...]:
    label = MOCK_LABEL.split()
    filler = (_FILLER_WORDS[(seed[index % len(seed)] + index) % len(_FILLER_WORDS)] for index in range(count))
    return tuple([*label, *filler][:count])


def _tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _message_text(message: Any) -> str:
    if not isinstance(message, Mapping):
        return _dumps(message)
    others = {key: value for key, value in message.items() if key not in ("role", "content")}
    return _text_of(message.get("content")) + (_dumps(others) if others else "")


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text_of_part(part) for part in content)
    return _dumps(content)


def _text_of_part(part: Any) -> str:
    if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return str(part["text"])
    return _dumps(part)


def _openai_usage(completion: _Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": completion.input_tokens,
        "completion_tokens": completion.output_tokens,
        "total_tokens": completion.input_tokens + completion.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _anthropic_usage(completion: _Completion) -> dict[str, Any]:
    return {
        "input_tokens": completion.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": completion.output_tokens,
        "service_tier": "standard",
    }


def _has_credentials(dialect: Dialect, headers: Mapping[str, str]) -> bool:
    bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
    if dialect == "openai":
        return headers.get("authorization", "").startswith("Bearer ") and bool(bearer)
    return bool(headers.get("x-api-key", "").strip()) or bool(bearer)


def _invalid_request(dialect: Dialect, headers: Mapping[str, str], body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return "We could not parse the JSON body of your request: expected a JSON object."
    if dialect == "anthropic" and not headers.get("anthropic-version"):
        return "anthropic-version: header is required"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages: Field required (a non-empty list)"
    if dialect == "anthropic" and "max_tokens" not in body:
        return "max_tokens: Field required"
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return f"{name}: must be a positive integer"
    return None


def _first_int(body: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _error_reply(dialect: Dialect, status: int, message: str) -> _Reply:
    request_id = _request_id()
    if dialect == "openai":
        default = ("server_error", None) if status >= 500 else ("invalid_request_error", None)
        error_type, code = _OPENAI_ERRORS.get(status, default)
        error = {"message": message, "type": error_type, "param": None, "code": code}
        payload: dict[str, Any] = {"error": error}
        return _json_reply(status, payload, {"x-request-id": request_id})
    default_type = "api_error" if status >= 500 else "invalid_request_error"
    payload = {
        "type": "error",
        "error": {"type": _ANTHROPIC_ERRORS.get(status, default_type), "message": message},
        "request_id": request_id,
    }
    return _json_reply(status, payload, {"request-id": request_id})


def _json_reply(status: int, payload: Any, headers: Mapping[str, str]) -> _Reply:
    return _Reply(status, {"content-type": "application/json", **headers}, _dumps(payload).encode("utf-8"))


def _stream_reply(events: Iterable[bytes], headers: Mapping[str, str]) -> _Reply:
    stream_headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
    return _Reply(200, {**stream_headers, **headers}, events=tuple(events))


def _anthropic_event(payload: Mapping[str, Any]) -> bytes:
    return _sse(str(payload["type"]), _dumps(payload))


def _sse(event: str | None, data: str) -> bytes:
    prefix = f"event: {event}\n" if event is not None else ""
    return f"{prefix}data: {data}\n\n".encode()


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
