"""A local stand-in for API Gateway: HTTP requests in, REST proxy events to a Lambda handler, responses out."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    timeout_seconds: float
    started: float
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


def proxy_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, stage: str) -> dict[str, Any]:
    """An API Gateway REST API (v1) proxy integration event, as Lambda receives it."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    text_body: str | None
    try:
        text_body, encoded = (body.decode("utf-8"), False) if body else (None, False)
    except UnicodeDecodeError:
        text_body, encoded = base64.b64encode(body).decode(), True
    request_id = str(uuid.uuid4())
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": parts.path,
            "httpMethod": method,
            "path": f"/{stage}{parts.path}",
            "stage": stage,
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
            "accountId": "000000000000",
            "apiId": "local",
        },
        "body": text_body,
        "isBase64Encoded": encoded,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # API Gateway accepts bursts; a backlog of 5 would reset concurrent clients


class LocalApiGateway:
    """Serves ``handler`` on 127.0.0.1:port; each HTTP request becomes one Lambda invocation."""

    def __init__(self, handler: Handler, *, port: int = 0, stage: str = "api", timeout_seconds: float = 40.0) -> None:
        self._handler = handler
        self._stage = stage
        self._timeout = timeout_seconds
        self._server = _Server(("127.0.0.1", port), self._request_handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api-gateway", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the stack prints its own lines
                return

            def _invoke(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name: value for name, value in self.headers.items()}
                event = proxy_event(self.command, self.path, headers, body, gateway._stage)
                context = LambdaContext(
                    "costbrake-gateway",
                    event["requestContext"]["requestId"],
                    gateway._timeout,
                    time.monotonic(),
                )
                try:
                    response = gateway._handler(event, context)
                except Exception:  # an unhandled Lambda error is API Gateway's 502
                    response = {
                        "statusCode": 502,
                        "headers": {"Content-Type": "application/json"},
                        "body": '{"message": "Internal server error"}',
                    }
                payload = response.get("body") or ""
                data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
                self.send_response(int(response.get("statusCode", 200)))
                merged: dict[str, list[str]] = {k: [v] for k, v in (response.get("headers") or {}).items()}
                for name, values in (response.get("multiValueHeaders") or {}).items():
                    merged[name] = list(values)
                for name, values in merged.items():
                    if name.lower() in ("content-length", "connection"):
                        continue
                    for value in values:
                        self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _invoke
            do_POST = _invoke
            do_PUT = _invoke
            do_DELETE = _invoke

        return _Handler
