"""HTTP to the providers: one pooled urllib3 client per container, one overall deadline per call."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from costbrake.errors import ProviderFailed, ProviderTimeout

_READ_CHUNK_BYTES = 64 * 1024
# Set by the adapters themselves; a client-supplied copy must never replace them.
_RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "accept-encoding",
    }
)


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json")

    @property
    def is_event_stream(self) -> bool:
        return self.content_type.split(";", 1)[0].strip().lower() == "text/event-stream"

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id") or self.headers.get("request-id")


@functools.cache
def _pool_manager() -> urllib3.PoolManager:
    # Built on first call rather than at import, then reused while the container stays warm.
    return urllib3.PoolManager(num_pools=4, maxsize=32, retries=False)  # one per thread of a local stack


def endpoint(base_url: str, path: str) -> str:
    """``base_url`` + ``path``; a base configured with a trailing ``/v1`` is accepted too."""
    base = base_url.rstrip("/")
    if base.endswith("/v1") and path.startswith("/v1/"):
        base = base[: -len("/v1")]
    return base + path


def encode_json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def forwardable_headers(extra_headers: Mapping[str, str] | None) -> dict[str, str]:
    return {
        name.lower(): value for name, value in (extra_headers or {}).items() if name.lower() not in _RESERVED_HEADERS
    }


def post_json(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, provider: str) -> RawResponse:
    """POST and read the complete answer, all within ``timeout`` seconds of wall time.

    The deadline is real elapsed time (``time.monotonic``), not the injected Clock: it bounds socket waits so
    the call ends before API Gateway and the Lambda give up, which is what lets every reservation settle.
    """
    deadline = time.monotonic() + timeout
    try:
        response = _pool_manager().request(
            "POST",
            url,
            body=body,
            headers=dict(headers),
            timeout=urllib3.Timeout(total=timeout),
            preload_content=False,
            redirect=False,
            retries=False,
        )
        return RawResponse(
            status=response.status,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=_read_before(response, deadline, provider),
        )
    except NewConnectionError as exc:  # subclasses ConnectTimeoutError, so it is caught first
        raise ProviderFailed(f"{provider} could not be reached ({type(exc).__name__})") from exc
    except ConnectTimeoutError as exc:  # no connection, so nothing was sent
        raise ProviderTimeout(f"{provider} could not be reached within {timeout:g} s") from exc
    except Urllib3TimeoutError as exc:
        raise ProviderTimeout(f"{provider} did not answer within {timeout:g} s", request_sent=True) from exc
    except HTTPError as exc:
        # Connected, then broken: the body may have been sent and the provider may be generating.
        raise ProviderFailed(f"{provider} connection failed ({type(exc).__name__})", request_sent=True) from exc


def _read_before(response: urllib3.BaseHTTPResponse, deadline: float, provider: str) -> bytes:
    chunks: list[bytes] = []
    complete = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProviderTimeout(f"{provider} did not finish its answer in time", request_sent=True)
            # A per-read socket timeout alone lets a slowly trickling stream run forever; cap each read at
            # what is left of the overall deadline instead.
            sock = getattr(response.connection, "sock", None)
            if sock is not None:
                sock.settimeout(remaining)
            chunk = response.read1(_READ_CHUNK_BYTES)
            if not chunk:
                complete = True
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        if not complete:
            response.close()  # unread bytes would poison the pooled connection
        response.release_conn()
