"""Lambda's shapes for local use: a context object, API Gateway REST proxy events, and the request one stands for."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


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


def request_of(event: dict[str, Any]) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path with query, headers, body) of a REST proxy event: what the Lambda Web Adapter hands the
    gateway app for it."""
    headers = {name: values[-1] for name, values in (event.get("multiValueHeaders") or {}).items() if values}
    headers |= event.get("headers") or {}
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    query = event.get("queryStringParameters") or {}
    path = event["path"] + (f"?{urlencode(query)}" if query else "")
    return event["httpMethod"], path, headers, body
