"""The mock provider's HTTP side: a threaded loopback server, the providers' reply and error formats.

``MockServer`` hands each request to a ``Responder`` (the ``MockProvider``) and writes the ``Reply`` back:
a JSON body, a chunked server-sent-event stream (optionally with gaps between events), or — for an injected
broken connection — only the first bytes of the response before closing the socket.
"""

from __future__ import annotations

import contextlib
import http
import json
import socket
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Protocol, cast
from urllib.parse import urlsplit

from costbrake.local.mock_problems import Problem

Dialect = Literal["openai", "anthropic"]


class Responder(Protocol):
    def _record(self, request: RecordedRequest) -> None: ...

    def _answer(self, request: RecordedRequest) -> Reply: ...

    def _wait(self, seconds: float) -> bool: ...

    def _take_stream_gap(self) -> float: ...

    def _streamed(self, reply_id: str, sent: int, total: int) -> None: ...


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
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    events: tuple[bytes, ...] | None = None  # a streamed answer, one SSE event per element
    delay: float = 0.0  # wait before answering (after generating)
    drop_after: int | None = None  # send only this many bytes of the answer, then close the connection


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of concurrent test calls must queue, not be reset

    def __init__(self, address: tuple[str, int], mock: Responder) -> None:
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
    def _server(self) -> MockServer:
        return cast(MockServer, self.server)

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
            body=parse_json(raw_body),
            raw_body=raw_body,
        )
        mock = self._server.mock
        mock._record(request)
        reply = mock._answer(request)
        if reply.delay and not mock._wait(reply.delay):
            self.close_connection = True
            return
        try:
            if reply.drop_after is not None:
                self._drop(reply, reply.drop_after)
            elif reply.events is None:
                self._send_body(reply)
            else:
                self._send_stream(reply, gap=mock._take_stream_gap())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout); nothing left to do

    def _drop(self, reply: Reply, after_bytes: int) -> None:
        """Send the first ``after_bytes`` bytes of the answer, then close the connection."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.write(raw_response(reply)[:after_bytes])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_body(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _send_stream(self, reply: Reply, *, gap: float) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        events = reply.events or ()
        reply_id = reply.headers.get("x-request-id") or reply.headers.get("request-id") or ""
        sent = 0
        try:
            for index, event in enumerate(events):
                if index and gap and not self._server.mock._wait(gap):
                    self.close_connection = True
                    return
                self.wfile.write(f"{len(event):X}\r\n".encode() + event + b"\r\n")
                self.wfile.flush()
                sent += 1
            self.wfile.write(b"0\r\n\r\n")
        finally:
            # A client that closed the connection stops the "generation" here, as a real provider stops.
            self._server.mock._streamed(reply_id, sent, len(events))


def error_reply(dialect: Dialect, status: int, problem: str | Problem) -> Reply:
    problem = problem if isinstance(problem, Problem) else Problem(problem)
    reply_id = request_id()
    if dialect == "openai":
        default = ("server_error", None) if status >= 500 else ("invalid_request_error", None)
        error_type, code = _OPENAI_ERRORS.get(status, default)
        error = {"message": problem.message, "type": error_type, "param": problem.param, "code": code or problem.code}
        payload: dict[str, Any] = {"error": error}
        return json_reply(status, payload, {"x-request-id": reply_id})
    default_type = "api_error" if status >= 500 else "invalid_request_error"
    payload = {
        "type": "error",
        "error": {"type": _ANTHROPIC_ERRORS.get(status, default_type), "message": problem.message},
        "request_id": reply_id,
    }
    return json_reply(status, payload, {"request-id": reply_id})


def json_reply(status: int, payload: Any, headers: Mapping[str, str]) -> Reply:
    return Reply(status, {"content-type": "application/json", **headers}, dumps(payload).encode("utf-8"))


def stream_reply(events: Iterable[bytes], headers: Mapping[str, str]) -> Reply:
    stream_headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
    return Reply(200, {**stream_headers, **headers}, events=tuple(events))


def raw_response(reply: Reply) -> bytes:
    """The whole HTTP response as it would go on the wire (for a connection dropped part-way)."""
    lines = [f"HTTP/1.1 {reply.status} {http.HTTPStatus(reply.status).phrase}"]
    lines += [f"{name}: {value}" for name, value in reply.headers.items()]
    if reply.events is None:
        lines.append(f"content-length: {len(reply.body)}")
        payload = reply.body
    else:
        lines.append("transfer-encoding: chunked")
        payload = b"".join(f"{len(event):X}\r\n".encode() + event + b"\r\n" for event in reply.events) + b"0\r\n\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def anthropic_event(payload: Mapping[str, Any]) -> bytes:
    return sse(str(payload["type"]), dumps(payload))


def sse(event: str | None, data: str) -> bytes:
    prefix = f"event: {event}\n" if event is not None else ""
    return f"{prefix}data: {data}\n\n".encode()


def request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def openai_events(
    common: Mapping[str, Any],
    pieces: list[str],
    finish_reason: str,
    usage: Mapping[str, Any],
    *,
    include_usage: bool,
    omit: bool,
) -> list[bytes]:
    """A chat.completion.chunk stream; with include_usage every chunk has "usage": null but the last."""

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**common, "choices": [choice], **({"usage": None} if include_usage else {})}

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    chunks += [chunk({"content": piece}, None) for piece in pieces]
    chunks.append(chunk({}, finish_reason))
    if include_usage and not omit:
        chunks.append({**common, "choices": [], "usage": usage})
    return [sse(None, dumps(payload)) for payload in chunks] + [sse(None, "[DONE]")]


_EMPTY_TEXT = {"type": "text", "text": ""}
# Newer API versions repeat the input, cache and server-tool counts in message_delta; the mock does too.
_ANTHROPIC_COUNT_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "server_tool_use",
)


def anthropic_events(message: Mapping[str, Any], pieces: list[str], *, omit_usage: bool) -> list[bytes]:
    """A Messages stream of ``message``; omit_usage cuts it before message_delta (no final usage)."""
    usage, has_text = message["usage"], bool(message["content"])
    # message_start carries the input counts and a provisional output count of 1, like the real API.
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [anthropic_event({"type": "message_start", "message": start})]
    if has_text:
        events.append(anthropic_event({"type": "content_block_start", "index": 0, "content_block": _EMPTY_TEXT}))
    events.append(anthropic_event({"type": "ping"}))
    events += [
        anthropic_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
        for piece in pieces
    ]
    if omit_usage:
        return events
    events += [anthropic_event({"type": "content_block_stop", "index": 0})] if has_text else []
    final_usage = {name: usage[name] for name in _ANTHROPIC_COUNT_FIELDS if name in usage}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(anthropic_event({"type": "message_delta", "delta": delta, "usage": final_usage}))
    return [*events, anthropic_event({"type": "message_stop"})]
