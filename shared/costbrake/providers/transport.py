"""HTTP to the providers: one pooled async httpx client per app, answers read as they arrive.

Every read has two limits: the idle gap between two chunks (``idle``, httpx's read timeout) and the whole call
(``deadline``, wall time). Both are real time, not the injected Clock: they bound socket waits so a call ends
before API Gateway and the Lambda give up, which is what lets every reservation settle.

A failure says whether the request may have reached the provider (``request_sent``): before a connection was
made, nothing can have been generated; after, the provider may be generating and billing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from costbrake.errors import ProviderFailed, ProviderTimeout

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
# At most this long to connect: a provider that cannot be reached is refused quickly (and refunded).
_CONNECT_SECONDS = 10.0


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
        return is_event_stream(self.content_type)

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id") or self.headers.get("request-id")


def is_event_stream(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def new_client() -> httpx.AsyncClient:
    # No retries, redirects or environment proxies: one request is one (possibly billed) generation.
    return httpx.AsyncClient(
        follow_redirects=False, trust_env=False, limits=httpx.Limits(max_connections=256, max_keepalive_connections=64)
    )


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


@dataclass
class Upstream:
    """One open upstream answer: its status and headers, and its body as it arrives."""

    response: httpx.Response
    provider: str
    idle: float
    deadline: float  # time.monotonic() by which the whole call must have ended

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.response.headers.items()}

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive; ProviderTimeout / ProviderFailed (request sent) when it stalls,
        runs past the deadline or breaks."""
        stream = self.response.aiter_raw()
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise ProviderTimeout(f"{self.provider} did not finish its answer in time", request_sent=True)
            try:
                with anyio.fail_after(left):
                    chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise ProviderTimeout(f"{self.provider} did not finish its answer in time", request_sent=True) from exc
            except httpx.TimeoutException as exc:
                raise ProviderTimeout(f"{self.provider} sent nothing for {self.idle:g} s", request_sent=True) from exc
            except httpx.TransportError as exc:
                raise ProviderFailed(
                    f"{self.provider} connection failed ({type(exc).__name__})", request_sent=True
                ) from exc
            if chunk:
                yield chunk

    async def read(self) -> RawResponse:
        parts = [chunk async for chunk in self.chunks()]
        return RawResponse(self.status, self.headers, b"".join(parts))

    async def close(self) -> None:
        # Closing the connection mid-answer is how a provider learns to stop generating.
        await self.response.aclose()


async def open_upstream(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    provider: str,
    idle: float,
    total: float,
) -> Upstream:
    """POST and wait for the status line and headers (within ``idle`` seconds and the whole ``total``)."""
    deadline = time.monotonic() + total
    timeout = httpx.Timeout(connect=min(_CONNECT_SECONDS, idle), read=idle, write=idle, pool=idle)
    request = client.build_request("POST", url, content=body, headers=dict(headers), timeout=timeout)
    try:
        with anyio.fail_after(total):
            response = await client.send(request, stream=True)
    except httpx.ConnectError as exc:
        raise ProviderFailed(f"{provider} could not be reached ({type(exc).__name__})") from exc
    except httpx.ConnectTimeout as exc:  # no connection, so nothing was sent
        raise ProviderTimeout(f"{provider} could not be reached within {timeout.connect:g} s") from exc
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise ProviderTimeout(f"{provider} did not answer within {idle:g} s", request_sent=True) from exc
    except httpx.TransportError as exc:
        # Connected, then broken: the body may have been sent and the provider may be generating.
        raise ProviderFailed(f"{provider} connection failed ({type(exc).__name__})", request_sent=True) from exc
    return Upstream(response, provider, idle, deadline)
